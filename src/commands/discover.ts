import type { Command } from './types.js';
import { parse } from './args.js';
import { runMatrix } from '../runner/run.js';
import { makeProgress } from '../runner/progress.js';
import { UsageError } from '../errors.js';
import { cleanText } from '../secrets.js';

export const discoverCommand: Command = {
  name: 'discover',
  summary: "print one driver's library, token and mechanism table (runs the discovery suite only)",
  usage: 'hsm-harness discover --driver ID [--json]',
  async run(argv) {
    const { values } = parse('discover', argv, {
      driver: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (!values.driver) throw new UsageError('discover: --driver is required; list drivers with: hsm-harness drivers');
    const results = await runMatrix({ driverIds: [values.driver], suites: ['discovery'], progress: makeProgress(process.stderr, true) });
    const d = results.drivers[0]!;
    if (!d.available) throw new UsageError(`driver ${d.id} is unavailable: ${d.availabilityReason}`);
    if (d.status !== 'ran') {
      // A module that crashed or hung: say so on stderr, not only in the JSON or the table.
      const what = d.status === 'timeout' ? 'did not answer in time' : d.status === 'crash' ? 'crashed' : 'failed';
      process.stderr.write(
        `hsm-harness: discover: the module of driver ${d.id} ${what} (${cleanText(d.statusReason ?? d.status, true)}); ` +
          "check the module with its vendor's tools (pkcs11-tool --module … -L), or raise HSM_CASE_TIMEOUT_S if it is only slow\n",
      );
    }
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ id: d.id, status: d.status, info: d.info, mechanisms: d.mechanisms, findings: d.findings, cases: d.cases }, null, 2)}\n`,
      );
    } else {
      for (const [k, v] of Object.entries(d.info)) if (typeof v !== 'object') process.stdout.write(`${k}: ${cleanText(String(v), true)}\n`);
      process.stdout.write('\n');
      for (const m of d.mechanisms) {
        process.stdout.write(
          `${m.name.padEnd(34)} ${String(m.minKeySize).padStart(6)} ${String(m.maxKeySize).padStart(6)}  ${m.flags.join(',')}${m.exercised ? `  [${m.exercised}]` : ''}\n`,
        );
      }
      for (const f of d.findings) process.stdout.write(`finding [${f.kind}]: ${cleanText(f.text, true)}\n`);
    }
    return d.status === 'ran' && d.cases.every((c) => c.status !== 'fail' && c.status !== 'crash' && c.status !== 'timeout') ? 0 : 1;
  },
};
