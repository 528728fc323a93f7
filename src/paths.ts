import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The project's root directory, whether running from src/ (vitest) or dist/ (built CLI). */
export function projectRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'hsm-harness') return (root = dir);
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the hsm-harness project root');
    dir = up;
  }
}

export function toolVersion(): string {
  return JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')).version as string;
}
