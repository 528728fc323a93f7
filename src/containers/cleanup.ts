/**
 * Removing containers a run started, when the driver that started them could not (its process crashed, timed
 * out or was killed). Uses the container CLI directly (docker, else podman): testcontainers' own cleanup runs
 * in the process that died. Each removal is bounded in time.
 */
import { runTool, which } from '../proc.js';

/** Remove the containers by id; returns the ids that could not be removed, with the reason. */
export async function removeContainers(ids: string[]): Promise<{ id: string; error: string }[]> {
  if (ids.length === 0) return [];
  const cli = (await which('docker')) ?? (await which('podman'));
  if (!cli) return ids.map((id) => ({ id, error: 'neither docker nor podman is on PATH' }));
  const failures: { id: string; error: string }[] = [];
  for (const id of ids) {
    const r = await runTool(cli, ['rm', '-f', '-v', id], { timeoutMs: 30_000 });
    // "No such container" means it is already gone: that is the goal.
    if (r.code !== 0 && !/no such container/i.test(r.stderr)) failures.push({ id, error: r.stderr.trim().split('\n').pop() || `exit ${r.code}` });
  }
  return failures;
}
