import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from './types.js';
import { parse } from './args.js';
import { UsageError } from '../errors.js';
import { DirSwitchError, checkWritableDir, makeDirs, recoverDirSwitch, replaceDir } from '../fsutil.js';
import { loadRun, resultsFiles, shortPath, type LoadedRun } from '../fleet/load.js';
import { SITE_MARKER, renderSite } from '../fleet/site.js';
import { loadSectionReports } from '../registry.js';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge many runs (results.json files or directories) into one static site: matrix, tested-HSMs tables, benchmark history',
  usage: 'hsm-harness merge <results.json|dir>... --out DIR',
  async run(argv) {
    const { values, positionals } = parse('merge', argv, { out: { type: 'string' } }, true);
    if (positionals.length === 0) throw new UsageError('merge: give at least one results.json file or directory; see hsm-harness merge --help');
    if (!values.out) throw new UsageError('merge: --out DIR is required (the site folder to write)');
    const out = resolve(values.out);
    // Every input is read and checked before anything is written.
    const runs = new Map<string, LoadedRun>();
    for (const arg of positionals) {
      for (const file of resultsFiles(arg)) {
        const run = await loadRun(file);
        run.file = shortPath(file);
        runs.set(run.id, run); // the same upload given twice is one run
      }
    }
    if (existsSync(out) && readdirSync(out).length > 0 && !existsSync(join(out, SITE_MARKER))) {
      throw new UsageError(`merge: ${values.out} exists and is not a site written by hsm-harness merge; choose a new or empty directory for --out`);
    }
    const files = renderSite([...runs.values()], undefined, await loadSectionReports());
    await checkWritableDir(out);
    await makeDirs(dirname(out));
    // Written beside the target, then switched in: a failed merge leaves the previous site whole.
    await recoverDirSwitch(out);
    try {
      await replaceDir(out, async (stage) => {
        for (const [rel, text] of files) {
          await mkdir(dirname(join(stage, rel)), { recursive: true });
          await writeFile(join(stage, rel), text);
        }
      });
    } catch (err) {
      if (!(err instanceof DirSwitchError)) throw err;
      const code = (err.cause as NodeJS.ErrnoException)?.code ?? (err.cause as Error)?.message;
      throw new UsageError(`merge: cannot ${err.step} the site at ${values.out} (${code}); the previous site is unchanged`);
    }
    process.stdout.write(`merged ${runs.size} run(s) into ${shortPath(out)}/index.html (tested-hsms.md, tested-hsms.rst, matrix.json)\n`);
    return 0;
  },
};
