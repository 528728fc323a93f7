/**
 * The pykmip driver's process handling against the real server: a killed server is restarted on the same
 * port (what the robustness suite relies on), and stop() leaves no process and no directory behind.
 */
import { expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { driver } from '../../drivers/pykmip.js';
import { KmipClient } from '../../src/kmip/client.js';
import { forwardLedger } from '../../src/ledger.js';

const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('restart after the server was killed, then a clean stop', async () => {
  // What the driver records in the ledger, as the runner's worker would forward it to the parent.
  const pids: number[] = [];
  const dirs: string[] = [];
  forwardLedger(({ held, entry }) => {
    if (held && entry.t === 'pid') pids.push(entry.pid);
    if (held && entry.t === 'dir') dirs.push(entry.path);
  });
  const started = await driver.start(process.env);
  const conn = started.connections.kmip!;
  const first = pids.at(-1)!;
  try {
    process.kill(-first, 'SIGKILL');
    await expect(KmipClient.connect(conn, { timeoutMs: 2000 }).then((c) => c.query())).rejects.toThrow();
    await conn.restart!();
    const second = pids.at(-1)!;
    expect(second).not.toBe(first);
    const c = await KmipClient.connect(conn);
    expect((await c.query()).vendorIdentification).toMatch(/PyKMIP/);
    c.close();
  } finally {
    await started.stop();
  }
  expect(dirs.length).toBeGreaterThan(0);
  for (const pid of pids) expect(running(pid)).toBe(false);
  for (const d of dirs) expect(existsSync(d)).toBe(false);
});
