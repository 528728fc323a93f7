/**
 * Child process of the container-runtime probe (runtime.ts). It loads testcontainers, says so (the parent's
 * cap on the runtime's answer starts only then, so a slow machine loading modules is not mistaken for a
 * runtime that does not answer), asks testcontainers for a runtime and sends one verdict back over IPC. It
 * may hang forever on a daemon that accepts but never answers; the parent kills it at the cap, so no
 * dangling request is left in the harness's own process.
 */
interface Verdict {
  type: 'verdict';
  ok: boolean;
  detail: string;
}

function reply(v: Verdict): void {
  process.send?.(v, () => process.exit(0));
}

const { getContainerRuntimeClient } = await import('testcontainers');
process.send?.({ type: 'loaded' });
getContainerRuntimeClient().then(
  (client) => {
    const rt = client.info.containerRuntime;
    reply({ type: 'verdict', ok: true, detail: `${rt.operatingSystem} (server ${rt.serverVersion}) at ${rt.host}` });
  },
  (err: unknown) => reply({ type: 'verdict', ok: false, detail: err instanceof Error ? err.message : String(err) }),
);
