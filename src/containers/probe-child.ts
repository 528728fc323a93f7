/**
 * Child process of the container-runtime probe (runtime.ts). It asks testcontainers for a runtime and sends
 * one verdict back over IPC. It may hang forever on a daemon that accepts but never answers; the parent
 * kills it after a few seconds, so no dangling request is left in the harness's own process.
 */
import { getContainerRuntimeClient } from 'testcontainers';

interface Verdict { ok: boolean; detail: string }

function reply(v: Verdict): void {
  process.send?.(v, () => process.exit(0));
}

getContainerRuntimeClient().then(
  (client) => {
    const rt = client.info.containerRuntime;
    reply({ ok: true, detail: `${rt.operatingSystem} (server ${rt.serverVersion}) at ${rt.host}` });
  },
  (err: unknown) => reply({ ok: false, detail: err instanceof Error ? err.message : String(err) }),
);
