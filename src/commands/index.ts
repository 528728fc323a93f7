/**
 * The CLI's commands, each in its own file, imported only when it runs: `kmip decode` and `--version` must not
 * load the PKCS#11 addon (test/core/lazy-commands.test.ts). A new command is one line here.
 */
import type { Command } from './types.js';
import { importFromTree } from '../registry.js';

export interface CommandEntry {
  name: string;
  load(): Promise<Command>;
}

export const commands: CommandEntry[] = [
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'drivers', load: async () => (await import('./drivers.js')).driversCommand },
  { name: 'discover', load: async () => (await import('./discover.js')).discoverCommand },
  { name: 'kmip', load: async () => (await import('./kmip.js')).kmipCommand },
  { name: 'dkek', load: async () => (await import('./dkek.js')).dkekCommand },
  // Beside the benchmarks it drives; loaded by path so that src/ does not import bench/.
  { name: 'bench', load: async () => (await importFromTree<{ benchCommand: Command }>('bench/command')).benchCommand },
  { name: 'cleanup', load: async () => (await import('./cleanup.js')).cleanupCommand },
  { name: 'merge', load: async () => (await import('./merge.js')).mergeCommand },
  { name: 'diff', load: async () => (await import('./diff.js')).diffCommand },
  { name: 'images', load: async () => (await import('./images.js')).imagesCommand },
];
