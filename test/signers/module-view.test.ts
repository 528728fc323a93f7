/**
 * The generic URI driver on a module it does not start: at start it counts the module's tokens. Beside another
 * initialised token, it serves only the token under test with a p11-kit server on this host, so a signer sees that
 * token alone; on a module whose only initialised token is the one under test it starts nothing. Independent
 * references: softhsm2-util --show-slots (what the module shows), pkcs11-tool -L through the view (what a signer's
 * PKCS#11 library sees), p11-kit list-modules and pkcs11-spy's C_GetSlotList inside the signer's isolation, as the
 * signers suite measures it. A whole signer run on that module is in module-view.slow.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from '../../src/proc.js';
import { SoftHsmStore, SOFTHSM_MODULE, type SoftHsmToken } from '../../src/softhsm.js';
import { pidAlive } from '../../src/proc.js';
import { forwardLedger } from '../../src/ledger.js';
import type { StartedDriver } from '../../src/driver.js';
import { driver } from '../../drivers/pkcs11.js';
import { isolation, visibleModules } from '../../src/signers/isolation.js';
import { PKCS11_SPY, spyAvailable, spyLog } from '../../src/signers/trace.js';

/** Initialised tokens the store shows, by label (softhsm2-util lists the empty slot for a new token too, uninitialised). */
async function initialisedTokens(store: SoftHsmStore): Promise<string[]> {
  const r = await runTool('softhsm2-util', ['--show-slots'], { env: { ...process.env, ...store.env }, timeoutMs: 20_000 });
  return r.stdout
    .split(/^Slot /m)
    .slice(1)
    .filter((b) => /Initialized:\s*yes/.test(b))
    .map((b) => /Label:\s*(.*?)\s*$/m.exec(b.split('Token info:')[1] ?? '')?.[1] ?? '');
}

/** Token labels pkcs11-tool -L lists on `module` with `env`: what any PKCS#11 application sees there. */
async function labelsSeen(module: string, env: Record<string, string>): Promise<string[]> {
  const r = await runTool('pkcs11-tool', ['--module', module, '-L'], { env: { ...process.env, ...env }, timeoutMs: 20_000 });
  return [...r.stdout.matchAll(/token label\s*:\s*(.*?)\s*$/gm)].map((m) => m[1]!);
}

function driverEnv(store: SoftHsmStore, token: SoftHsmToken): NodeJS.ProcessEnv {
  return {
    ...store.env,
    HSM_PKCS11_URI: `pkcs11:token=${token.label}?module-path=${SOFTHSM_MODULE}`,
    HSM_PKCS11_PIN: token.pin,
    HSM_PKCS11_EPHEMERAL: '1',
  };
}

let dir: string;
let two: SoftHsmStore;
let one: SoftHsmStore;
let underTest: SoftHsmToken;
let alone: SoftHsmToken;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-module-view-'));
  two = await SoftHsmStore.create();
  await two.addToken('hh-view-other');
  underTest = await two.addToken('hh-view-test');
  one = await SoftHsmStore.create();
  alone = await one.addToken('hh-view-alone');
}, 60_000);

afterAll(async () => {
  await two?.remove();
  await one?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The processes recorded in the ledger from now on, as the runner's worker would forward them to the parent. */
function serversStarted(): number[] {
  const pids: number[] = [];
  forwardLedger(({ held, entry }) => {
    if (held && entry.t === 'pid') pids.push(entry.pid);
  });
  pids.length = 0;
  return pids;
}

describe.skipIf(!spyAvailable())(`single-token view of the generic module driver (pkcs11-spy at ${PKCS11_SPY})`, () => {
  test('two initialised tokens: a p11-kit server exports only the token under test, and is stopped with the driver', async () => {
    expect((await initialisedTokens(two)).sort()).toEqual(['hh-view-other', 'hh-view-test']);
    process.env.SOFTHSM2_CONF = two.conf;
    const pids = serversStarted();
    const started: StartedDriver = await driver.start({ ...process.env, ...driverEnv(two, underTest) });
    try {
      const view = started.connections.pkcs11!.singleTokenView!;
      expect(view.how).toMatch(/p11-kit server on this host that exports only hh-view-test \(the module shows 2 initialised of 3 tokens/);
      expect(view.transport).toMatch(/p11-kit/);
      expect(pids).toHaveLength(1);
      expect(await labelsSeen(view.modulePath!, view.env)).toEqual(['hh-view-test']);
      // As the signers suite measures it: p11-kit's registry replaced by one holding pkcs11-spy around the view's module.
      const work = await mkdtemp(join(dir, 'iso-'));
      const iso = await isolation(work, PKCS11_SPY, view.binds);
      expect(iso.isolated, iso.how).toBe(true);
      const spy = await spyLog(work, 'view');
      const seen = await visibleModules(iso, { ...process.env, ...view.env, ...spy.env(view.modulePath!) });
      expect(seen.tokens).toEqual(['hh-view-test']);
      expect((await spy.collect()).slots).toBe(1);
    } finally {
      await started.stop();
    }
    expect(pidAlive(pids[0]!)).toBe(false);
  });

  test('one initialised token: no view needed, nothing started', async () => {
    expect(await initialisedTokens(one)).toEqual(['hh-view-alone']);
    process.env.SOFTHSM2_CONF = one.conf;
    const pids = serversStarted();
    const started = await driver.start({ ...process.env, ...driverEnv(one, alone) });
    try {
      const conn = started.connections.pkcs11!;
      expect(conn.singleTokenView).toMatchObject({ env: {}, binds: [] });
      expect(conn.singleTokenView!.how).toMatch(/^the module shows only this token \(1 initialised of 2 tokens present at start\)/);
      expect(conn.singleTokenView!.modulePath).toBeUndefined();
      expect(pids).toEqual([]);
    } finally {
      await started.stop();
    }
  });
});
