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
    // A frozen container (docker pause, or a driver stopped while its engine froze it) is thawed first: a forced
    // removal of a paused one once waited past its 30 s limit in CI and left the container behind.
    const paused = await runTool(cli, ['container', 'inspect', '--format', '{{.State.Paused}}', id], { timeoutMs: 30_000 });
    if (paused.code === 0 && paused.stdout.trim() === 'true') await runTool(cli, ['unpause', id], { timeoutMs: 30_000 });
    const r = await runTool(cli, ['rm', '-f', '-v', id], { timeoutMs: 30_000 });
    // "No such container" means it is already gone: that is the goal. When another release (the interrupt
    // handler and the driver's exit both release) is already removing it, wait until it is gone.
    if (r.code !== 0 && /already in progress/i.test(r.stderr) && (await gone(cli, id))) continue;
    if (r.code !== 0 && !/no such container/i.test(r.stderr)) failures.push({ id, error: r.stderr.trim().split('\n').pop() || `exit ${r.code}` });
  }
  return failures;
}

/** Wait (at most 30 s) until the engine no longer knows the container. */
async function gone(cli: string, id: string): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    const r = await runTool(cli, ['container', 'inspect', '--format', '{{.Id}}', id], { timeoutMs: 30_000 });
    if (r.code !== 0 && /no such/i.test(r.stderr)) return true;
    await new Promise((res) => setTimeout(res, 200));
  }
  return false;
}
