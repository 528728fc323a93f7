import type { Command } from './types.js';
import { parse } from './args.js';
import { cleanupDeadRuns } from '../runner/cleanup.js';
import { journalDir } from '../journal.js';
import { cleanText, redact } from '../secrets.js';

/**
 * Finish what killed runs left: the journals under the state directory of runs that are no longer running.
 * Only journalled things that pass the journal's checks are touched (processes still carrying their journalled
 * start time and command line, directories named as the harness names its temporary directories, containers,
 * objects whose CKA_ID carries the run's prefix and whose label the harness prefix). Objects on a
 * device are removed with the PIN from the same environment variables the run used.
 */
export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: 'remove what runs that were killed left behind (objects, servers, directories, containers), from their journals',
  usage: 'hsm-harness cleanup [--json]   (journals under $HSM_HARNESS_STATE_DIR, $XDG_STATE_HOME/hsm-harness or ~/.local/state/hsm-harness)',
  async run(argv) {
    const { values } = parse('cleanup', argv, { json: { type: 'boolean', default: false } });
    const outcomes = await cleanupDeadRuns(process.env);
    if (values.json) {
      process.stdout.write(redact(`${JSON.stringify({ journals: journalDir(process.env), outcomes }, null, 2)}\n`));
    } else if (outcomes.length === 0) {
      process.stdout.write(`nothing to clean up (no journal of a finished or killed run in ${cleanText(journalDir(process.env), true)})\n`);
    } else {
      for (const o of outcomes) {
        const lines = [
          ...o.ignored.map((l) => `  ignored: ${l}`),
          ...(o.removed ? ['  everything removed'] : o.left.length ? ['  still left:', ...o.left.map((l) => `    ${l}`)] : []),
        ];
        process.stdout.write(`${cleanText(o.journal, true)}:\n${lines.map((l) => `${cleanText(l, true)}\n`).join('')}`);
      }
    }
    // Lines that were ignored are not a failure: they named nothing of this harness, and were reported.
    return outcomes.every((o) => o.left.length === 0) ? 0 : 1;
  },
};
