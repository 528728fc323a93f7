/**
 * Lost sessions and the object lifecycle, on real SoftHSM loaded in this process. OpenSC invalidates a
 * process's sessions when another process touches the card; here the same loss is produced for real with
 * C_CloseAllSessions and with C_Logout from another session of the application (PKCS#11 v2.40 §5.6: login
 * state is shared by all sessions of an application). Cleanup must still leave the token as it was, and
 * must not touch the objects pkcs11-tool put there before.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rm } from 'node:fs/promises';
import { SOFTHSM_MODULE } from '../core/helpers.js';
import { Token } from '../../src/pkcs11/token.js';
import { pkcs11, type Handle } from '../../src/pkcs11/module.js';
import { setRunIdentity } from '../../src/pkcs11/run-identity.js';
import { forwardLedger } from '../../src/ledger.js';
import { generateKeyPair } from '../../src/pkcs11/keys.js';
import { TOOLS_MISSING, haveTools, listObjects, tokenWithForeignObjects, type ForeignToken } from './helpers.js';

let t: ForeignToken;
let foreign: string[];
const journal: { creating: string[]; gone: string[] } = { creating: [], gone: [] };

function open(): Token {
  const token = Token.open(SOFTHSM_MODULE, { label: t.label }, t.pin);
  token.login();
  return token;
}

/** Objects the harness made: two EC pairs, an imported AES key and a generated one, all tracked by the Token. */
async function makeOwn(token: Token): Promise<void> {
  await generateKeyPair(token, 'ec-p256', { label: 'hsm-harness-lost-session' });
  const pair = await generateKeyPair(token, 'ec-p256');
  token.createObject([
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_VALUE, value: Buffer.alloc(16, 7) },
    { type: pkcs11.CKA_ID, value: token.newId() },
  ]);
  token.generateKey({ mechanism: pkcs11.CKM_AES_KEY_GEN }, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_VALUE_LEN, value: 16 },
  ]);
  expect(pair.label.startsWith('hsm-harness-')).toBe(true);
}

describe.skipIf(!haveTools)(haveTools ? 'lost sessions and object ownership' : `lost sessions (skipped: ${TOOLS_MISSING})`, () => {
  beforeAll(async () => {
    t = await tokenWithForeignObjects('hh-lost-session', 'lost-pin-5523');
    process.env.SOFTHSM2_CONF = t.conf;
    foreign = await listObjects(t);
    setRunIdentity(Buffer.from('0123456789abcdef', 'hex'));
    forwardLedger(({ held, entry }) => {
      if (entry.t === 'object') (held ? journal.creating : journal.gone).push(entry.id);
    });
  });
  afterAll(async () => {
    await rm(t.dir, { recursive: true, force: true });
  });

  test('every object gets a run CKA_ID (prefix + counter) and the label prefix, journalled before it exists', async () => {
    const token = open();
    try {
      const before = token.countObjects();
      const pair = await generateKeyPair(token, 'rsa-2048', { label: 'no-prefix-given' });
      expect(pair.id.subarray(0, 8).toString('hex')).toBe('0123456789abcdef');
      expect(pair.label).toBe('hsm-harness-no-prefix-given');
      for (const h of [pair.privateKey, pair.publicKey]) {
        expect(token.attr(h, pkcs11.CKA_ID).equals(pair.id)).toBe(true);
        expect(token.attr(h, pkcs11.CKA_LABEL).toString()).toBe('hsm-harness-no-prefix-given');
      }
      expect(journal.creating).toContain(pair.id.toString('hex'));
      const next = token.newId();
      expect(next.readUInt32BE(8)).toBeGreaterThan(pair.id.readUInt32BE(8));
      // An ID not allocated by the run is refused: a leftover with it could not be proven ours.
      expect(() =>
        token.createObject([
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_DATA },
          { type: pkcs11.CKA_ID, value: Buffer.from('0102', 'hex') },
        ]),
      ).toThrow(/not allocated by Token.newId/);
      expect(token.objects.cleanup()).toEqual([]);
      expect(journal.gone).toContain(pair.id.toString('hex'));
      expect(token.countObjects()).toBe(before);
    } finally {
      token.close();
    }
  });

  test('destroy() refuses a handle the run did not create, and stops tracking only after C_DestroyObject succeeded', async () => {
    const token = open();
    try {
      const [foreignHandle] = token.find([{ type: pkcs11.CKA_LABEL, value: 'foreign-ec' }]);
      expect(() => token.objects.destroy(foreignHandle as Handle)).toThrow(/did not create/);
      const pair = await generateKeyPair(token, 'ec-p256');
      const tracked = token.objects.trackedCount;
      token.lib.C_CloseAllSessions(token.slot);
      expect(() => token.objects.destroy(pair.privateKey)).toThrow();
      expect(token.objects.trackedCount).toBe(tracked);
      expect(token.objects.cleanup()).toEqual([]);
      expect(token.objects.trackedCount).toBe(0);
    } finally {
      token.close();
    }
    expect(await listObjects(t)).toEqual(foreign);
  });

  test('all sessions closed underneath (C_CloseAllSessions from a second handle): cleanup reopens, logs in, removes its objects', async () => {
    const token = open();
    const other = open();
    try {
      const before = token.countObjects();
      await makeOwn(token);
      expect(token.countObjects()).toBe(before + 6);
      other.lib.C_CloseAllSessions(other.slot);
      expect(token.objects.cleanup()).toEqual([]);
      expect(token.reconnects).toBe(1);
      expect(token.countObjects()).toBe(before);
    } finally {
      token.close();
      other.close();
    }
    expect(await listObjects(t)).toEqual(foreign);
  });

  test('logged out from another session: cleanup logs in again, finds its objects by CKA_ID and removes them', async () => {
    const token = open();
    const other = open();
    try {
      const before = token.countObjects();
      await makeOwn(token);
      other.lib.C_Logout(other.session);
      expect(token.objects.cleanup()).toEqual([]);
      expect(token.reconnects).toBe(1);
      expect(token.countObjects()).toBe(before);
    } finally {
      token.close();
      other.close();
    }
    expect(await listObjects(t)).toEqual(foreign);
  });
});
