/**
 * The project's container definitions under containers/: where they are, the pinned image a one-line
 * Dockerfile names, and building an image with testcontainers (ecosystem.md §5).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { projectRoot } from '../paths.js';

export function containerDir(name: string): string {
  return join(projectRoot(), 'containers', name);
}

/**
 * The image a FROM-only Dockerfile names (containers/nethsm/Dockerfile), so that a dependency bot bumps one
 * line and the driver follows. A floating tag (`latest`, `testing`) is refused.
 */
export function pinnedImage(name: string): string {
  const text = readFileSync(join(containerDir(name), 'Dockerfile'), 'utf8');
  const from = text.split('\n').map((l) => l.trim()).find((l) => /^FROM\s/i.test(l));
  const image = from?.split(/\s+/)[1];
  if (!image || !/:[^/]+$/.test(image)) throw new Error(`containers/${name}/Dockerfile must be "FROM image:tag"`);
  const tag = image.slice(image.lastIndexOf(':') + 1);
  if (FLOATING_TAGS.has(tag)) throw new Error(`containers/${name}/Dockerfile uses the floating tag "${tag}"; pin a commit-hash tag`);
  return image;
}

export const FLOATING_TAGS = new Set(['latest', 'testing', 'main', 'master', 'edge', 'nightly']);

/** A local image name that changes when the build context does, so a stale image is never reused. */
export function localImageName(name: string, files: string[], extra = ''): string {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(join(containerDir(name), f)));
  h.update(extra);
  return `hsm-harness-${name}:${h.digest('hex').slice(0, 12)}`;
}

/** Build containers/<name> and return the image name. Imports testcontainers only when a runtime exists. */
export async function buildImage(name: string, files: string[], buildArgs: Record<string, string> = {}): Promise<string> {
  const { GenericContainer } = await import('testcontainers');
  const image = localImageName(name, files, JSON.stringify(buildArgs));
  await GenericContainer.fromDockerfile(containerDir(name)).withBuildArgs(buildArgs).build(image, { deleteOnExit: false });
  return image;
}
