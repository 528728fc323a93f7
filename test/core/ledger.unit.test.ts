/**
 * The ledger (src/ledger.ts): what a driver's process records reaches the parent's journal once per thing, in the
 * journal's existing line format, and cleanup reads it back as outstanding; a process, directory or container
 * the worker let go of stays journalled until cleanup proves it gone; an object proven gone is journalled as gone.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { Journal } from '../../src/journal.js';
import { DriverLedger, type LedgerChange, forwardLedger, hold, release } from '../../src/ledger.js';
import { redactFreeText, rememberSecret } from '../../src/secrets.js';

const state = mkdtempSync(join(tmpdir(), 'hh-ledger-'));
// Named as makeTempDir names its directories, so the journal accepts it.
const dir = mkdtempSync(join(tmpdir(), 'hsm-harness-ledger-'));
const bindDir = mkdtempSync(join(tmpdir(), 'hsm-harness-ledger-'));
afterAll(() => {
  rmSync(bindDir, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

const PREFIX = '0011223344556677';
const token = { modulePath: '/usr/lib/softhsm/libsofthsm2.so', label: 'hsm-harness', serial: '1234' };
const id = (n: number) => `${PREFIX}${n.toString(16).padStart(8, '0')}aabbccdd`;
const held = (entry: LedgerChange['entry']): LedgerChange => ({ held: true, entry });
const letGo = (entry: LedgerChange['entry']): LedgerChange => ({ held: false, entry });

test('each holding is journalled once, in the journal format; cleanup reads back what is still outstanding', () => {
  const journal = Journal.create('ledger-unit', PREFIX, { HSM_HARNESS_STATE_DIR: state });
  const ledger = new DriverLedger((change) => journal.record('softhsm', true, change));
  const container = 'hsm-harness-softhsm-container-14f93a06';
  const labelPrefix = `hsm-harness-${PREFIX}-knot-`;
  const changes: LedgerChange[] = [
    held({ t: 'worker', pid: process.pid }),
    held({ t: 'pid', pid: process.ppid, start: 'x', becomes: ['ods-enforcerd', '-d'] }),
    held({ t: 'pid', pid: process.ppid, start: 'x' }),
    held({ t: 'dir', path: dir }),
    held({ t: 'dir', path: dir }),
    held({ t: 'container', id: container }),
    letGo({ t: 'container', id: container }),
    held({ t: 'token', token }),
    held({ t: 'token', token }),
    held({ t: 'object', token, id: id(1), label: 'hsm-harness-a' }),
    held({ t: 'object', token, id: id(2), label: 'hsm-harness-b' }),
    letGo({ t: 'object', token, id: id(1), label: 'hsm-harness-a' }),
    held({ t: 'labelled', token, prefix: labelPrefix }),
    letGo({ t: 'labelled', token, prefix: labelPrefix }),
    held({ t: 'signer-keys', token, signer: 'knot', dir }),
    held({ t: 'signer-keys', token, signer: 'bind', dir: bindDir }),
    letGo({ t: 'signer-keys', token, signer: 'bind', dir: bindDir }),
    letGo({ t: 'dir', path: dir }),
  ];
  for (const c of changes) ledger.apply(c);

  const kinds = readFileSync(journal.file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).t);
  expect(kinds).toEqual([
    'run',
    'worker',
    'pid',
    'dir',
    'container',
    'token',
    'object',
    'object',
    'object-gone',
    'labelled',
    'labelled-gone',
    'signer-keys',
    'signer-keys',
    'signer-keys-gone',
  ]);
  const read = journal.read();
  expect(read.refused).toEqual([]);
  const x = read.drivers.get('softhsm')!;
  expect(x.workers.map((p) => p.pid)).toEqual([process.pid]);
  expect(x.pids.map((p) => p.pid)).toEqual([process.ppid]);
  // The command line a daemon's launcher execs into, in /proc's form, beside the one read when it was journalled.
  expect(x.pids[0]!.becomes).toBe('ods-enforcerd\u0000-d\u0000');
  expect(x.pids[0]!.cmdline).toBe(readFileSync(`/proc/${process.ppid}/cmdline`, 'latin1'));
  // Let go of by the worker, still outstanding: releaseDriver proves them gone itself.
  expect(x.dirs).toEqual([dir]);
  expect(x.containers).toEqual([container]);
  expect(x.tokens).toEqual([{ token, ephemeral: true, objects: [{ id: id(2), label: 'hsm-harness-b' }], labelled: [], signers: [{ signer: 'knot', dir }] }]);
  expect([...ledger.pids].sort()).toEqual([process.pid, process.ppid].sort());
});

test('a pid let go of and then used by another process (another start time) is journalled again', () => {
  const written: LedgerChange[] = [];
  const ledger = new DriverLedger((c) => written.push(c));
  ledger.apply(held({ t: 'pid', pid: 4242, start: '100' }));
  ledger.apply(letGo({ t: 'pid', pid: 4242, start: '100' }));
  ledger.apply(held({ t: 'pid', pid: 4242, start: '100' }));
  ledger.apply(held({ t: 'pid', pid: 4242, start: '900' }));
  expect(written.map((c) => (c.entry.t === 'pid' ? c.entry.start : c.entry.t))).toEqual(['100', '900']);
});

test('a process forwards what it held before the link existed, then every change; a token comes before its first object', () => {
  const path = join(tmpdir(), 'hsm-harness-ledger-unit-before');
  hold({ t: 'dir', path });
  const seen: LedgerChange[] = [];
  forwardLedger((c) => seen.push(c));
  expect(seen).toContainEqual(held({ t: 'dir', path }));
  seen.length = 0;
  hold({ t: 'dir', path });
  hold({ t: 'object', token, id: id(7), label: 'hsm-harness-c' });
  hold({ t: 'object', token, id: id(8), label: 'hsm-harness-d' });
  release({ t: 'dir', path });
  expect(seen).toEqual([
    held({ t: 'token', token }),
    held({ t: 'object', token, id: id(7), label: 'hsm-harness-c' }),
    held({ t: 'object', token, id: id(8), label: 'hsm-harness-d' }),
    letGo({ t: 'dir', path }),
  ]);
});

test("what a worker forwards keeps its directories and start times as they are; a token's labels are masked like all free text", () => {
  const secret = 'Zq8canary77';
  rememberSecret(secret);
  // A masked directory would name none (left behind); a masked start time could name another process.
  const dirMsg = { type: 'ledger', change: held({ t: 'dir', path: join(tmpdir(), `hsm-harness-x-${secret}`) }) };
  expect(redactFreeText(dirMsg)).toEqual(dirMsg);
  rememberSecret('84736251');
  const pidMsg = { type: 'ledger', change: held({ t: 'pid', pid: 4242, start: '9847362510' }) };
  expect(redactFreeText(pidMsg)).toEqual(pidMsg);
  const objectMsg = { type: 'ledger', change: held({ t: 'object', token: { ...token, label: `t-${secret}` }, id: id(3), label: `hsm-harness-${secret}` }) };
  const out = redactFreeText(objectMsg);
  expect(JSON.stringify(out)).not.toContain(secret);
  expect(out.change.entry).toMatchObject({ t: 'object', id: id(3) });
});
