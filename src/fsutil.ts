import { mkdir, rename, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { redact } from './secrets.js';

/**
 * Write a report so that readers see either the old file or the complete new one, never a partial file:
 * write a temporary sibling, then rename over the target (atomic on POSIX within one directory).
 * Text is redacted on the way out.
 */
export async function writeFileAtomic(path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const data = typeof content === 'string' ? redact(content) : content;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A private temporary directory, removed by the returned function. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `hsm-harness-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
