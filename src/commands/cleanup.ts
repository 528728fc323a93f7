import type { Command } from './types.js';
import { parse } from './args.js';
import { cleanupDeadRuns } from '../runner/cleanup.js';
import { journalDir } from '../journal.js';
import { redact } from '../secrets.js';

/**
 * Finish what killed runs left: the journals under the state directory of runs that are no longer running.
 * Only journalled things are touched (processes still carrying their journalled start time, the run's own
 * directories and containers, objects with a journalled CKA_ID and the harness label prefix). Objects on a
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
      process.stdout.write(`nothing to clean up (no journal of a finished or killed run in ${journalDir(process.env)})\n`);
    } else {
      for (const o of outcomes) {
        process.stdout.write(redact(o.removed ? `${o.journal}: everything removed\n` : `${o.journal}: still left:\n${o.left.map((l) => `  ${l}\n`).join('')}`));
      }
    }
    return outcomes.every((o) => o.removed) ? 0 : 1;
  },
};
