/**
 * The pykmip driver's process handling against the real server: a killed server is restarted on the same
 * port (what the robustness suite relies on), and stop() leaves no process and no directory behind.
 */
import { expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { driver } from '../../drivers/pykmip.js';
import { KmipClient } from '../../src/kmip/client.js';

const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('restart after the server was killed, then a clean stop', async () => {
  const started = await driver.start(process.env);
  const conn = started.connections.kmip!;
  const first = started.resources.pids[0]!;
  try {
    process.kill(-first, 'SIGKILL');
    await expect(KmipClient.connect(conn, { timeoutMs: 2000 }).then((c) => c.query())).rejects.toThrow();
    await conn.restart!();
    const second = started.resources.pids[0]!;
    expect(second).not.toBe(first);
    const c = await KmipClient.connect(conn);
    expect((await c.query()).vendorIdentification).toMatch(/PyKMIP/);
    c.close();
  } finally {
    await started.stop();
  }
  expect(running(started.resources.pids[0]!)).toBe(false);
  for (const d of started.resources.dirs) expect(existsSync(d)).toBe(false);
});
