/**
 * The NetHSM REST suite (Nitrokey/nethsm docs/nethsm-api.yaml; docs/drivers.md): generate EC P-256, RSA-2048 and Ed25519 keys, sign in ECDSA,
 * PKCS1 and EdDSA modes and verify every signature with node:crypto; back up, restore into a fresh
 * instance, unlock it with the original unlock passphrase, and sign there with the restored key.
 *
 * Key IDs and the signed message are fixed: the instance is fresh for every run (a container), and the
 * replay test (test/containers) checks the exact requests against fixtures/nethsm.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { CaseHandle, Suite, SuiteCase } from '../src/suite.js';
import type { NethsmConnection } from '../src/driver.js';
import { type NethsmClient, systemTime } from '../src/nethsm/client.js';
import type { KeyType, SignMode } from '../src/nethsm/client.js';
import { clientFor, credentials } from '../src/nethsm/provision.js';
import { schemeForKey, type SignScheme } from '../src/pkcs11/mechanisms.js';
import { capability } from '../src/capabilities.js';

/** The message every key signs (think: an RRSIG signing input). */
export const NETHSM_MESSAGE = Buffer.from('hsm-harness NetHSM suite: DNSSEC signing input for example.net.');

export interface NethsmKeySpec {
  id: string;
  type: KeyType;
  length?: number;
  mechanism: string;
  mode: SignMode;
  /** The same signature scheme in PKCS#11 terms: what the request carries and how node:crypto checks it. */
  scheme: SignScheme;
  /** The NetHSM returns ECDSA signatures DER-encoded (SEQUENCE{r,s}), not as PKCS#11's raw r‖s. */
  dsaEncoding?: 'der';
}

export const NETHSM_KEYS: NethsmKeySpec[] = [
  // ECDSA: the NetHSM takes the hash, as CKM_ECDSA does.
  { id: 'hhp256', type: 'EC_P256', mechanism: 'ECDSA_Signature', mode: 'ECDSA', scheme: schemeForKey('ec-p256'), dsaEncoding: 'der' },
  // PKCS1: the NetHSM takes DigestInfo ‖ hash (3.1 and later; CHANGES.md), as CKM_RSA_PKCS does.
  { id: 'hhrsa2048', type: 'RSA', length: 2048, mechanism: 'RSA_Signature_PKCS1', mode: 'PKCS1', scheme: schemeForKey('rsa-2048') },
  // EdDSA: the raw message in, 64-byte R ‖ S out.
  { id: 'hhed25519', type: 'Curve25519', mechanism: 'EdDSA_Signature', mode: 'EdDSA', scheme: schemeForKey('ed25519') },
];

/** Capability names shared with the PKCS#11 suites (same matrix columns). */
const keygenCapability = (spec: NethsmKeySpec) => capability(`keygen:${spec.scheme.key}`);
const signCapability = (spec: NethsmKeySpec) => capability(`sign:${spec.scheme.spec.name}`);

/** The first bytes of every NetHSM backup file (keyfender export_backup.py). */
export const NETHSM_BACKUP_MAGIC = Buffer.from('_NETHSM_BACKUP_');

async function signAndVerify(client: NethsmClient, conn: NethsmConnection, spec: NethsmKeySpec, pub: KeyObject): Promise<number> {
  const { operator } = credentials(conn);
  const signature = await client.sign(operator, spec.id, spec.mode, spec.scheme.input(NETHSM_MESSAGE));
  if (!spec.scheme.verify(pub, NETHSM_MESSAGE, signature, spec.dsaEncoding)) {
    throw new Error(`${spec.mode} signature from key ${spec.id} does not verify with node:crypto`);
  }
  return signature.length;
}

/** What the cases share: the client, the keys made and their public halves, the backup and the restored instance. */
interface NethsmState {
  conn: NethsmConnection;
  client: NethsmClient;
  admin: ReturnType<typeof credentials>['admin'];
  publicKeys: Map<string, KeyObject>;
  created: string[];
  backup?: Buffer;
  fresh?: { baseUrl: string; stop: () => Promise<void> };
  restored?: NethsmClient;
}

async function generateCase(c: CaseHandle, s: NethsmState, spec: NethsmKeySpec): Promise<void> {
  const id = await s.client.generateKey(s.admin, {
    mechanisms: [spec.mechanism],
    type: spec.type,
    ...(spec.length ? { length: spec.length } : {}),
    id: spec.id,
  });
  s.created.push(id);
  if (id !== spec.id) throw new Error(`asked for key ID ${spec.id}, the NetHSM answered ${id}`);
  const pub = createPublicKey(await s.client.publicKeyPem(s.admin, spec.id));
  c.detail('publicKeyType', pub.asymmetricKeyType);
  s.publicKeys.set(spec.id, pub);
}

async function backupCase(c: CaseHandle, s: NethsmState): Promise<void> {
  s.backup = await s.client.backup(credentials(s.conn).backup);
  c.detail('bytes', s.backup.length);
  if (!s.backup.subarray(0, NETHSM_BACKUP_MAGIC.length).equals(NETHSM_BACKUP_MAGIC)) {
    throw new Error('the backup does not start with the _NETHSM_BACKUP_ magic');
  }
}

async function restoreCase(c: CaseHandle, s: NethsmState): Promise<void> {
  const data = s.backup;
  if (!data) return c.skip('no backup to restore');
  if (!s.conn.startFresh) return c.skip('this driver cannot start a second instance to restore into');
  s.fresh = await s.conn.startFresh();
  const target = clientFor(s.fresh.baseUrl);
  await target.waitForState(['Unprovisioned'], 120_000);
  await target.restore(s.conn.backupPassphrase, systemTime(), data);
  const state = await target.waitForState(['Locked', 'Operational'], 60_000);
  c.detail('stateAfterRestore', state);
  s.restored = target;
}

export const nethsm: Suite<NethsmState> = {
  name: 'nethsm',
  title: 'NetHSM REST: keys, signatures, backup and restore',
  needs: 'nethsm',
  setup(ctx) {
    const conn = ctx.connections.nethsm!;
    return { conn, client: clientFor(conn.baseUrl), admin: credentials(conn).admin, publicKeys: new Map(), created: [] };
  },
  cases: [
    ...NETHSM_KEYS.map(
      (spec): SuiteCase<NethsmState> => ({
        name: `generate/${spec.type}${spec.length ? `-${spec.length}` : ''}`,
        run: (c, s) => generateCase(c, s, spec),
        after: (status, _s, ctx) => ctx.capability(keygenCapability(spec), status === 'pass'),
      }),
    ),
    ...NETHSM_KEYS.map(
      (spec): SuiteCase<NethsmState> => ({
        name: `sign/${spec.mode}`,
        async run(c, s) {
          const pub = s.publicKeys.get(spec.id);
          if (!pub) return c.skip(`key ${spec.id} was not generated`);
          c.detail('signatureBytes', await signAndVerify(s.client, s.conn, spec, pub));
        },
        after: (status, _s, ctx) => ctx.capability(signCapability(spec), status === 'pass'),
      }),
    ),
    { name: 'backup', run: backupCase },
    { name: 'restore', run: restoreCase },
    {
      name: 'restore/unlock',
      async run(c, s) {
        const target = s.restored;
        if (!target) return c.skip('nothing was restored');
        if ((await target.state()) === 'Locked') await target.unlock(s.conn.unlockPassphrase);
        await target.waitForState(['Operational'], 30_000);
      },
    },
    {
      name: 'restore/sign',
      async run(c, s) {
        const target = s.restored;
        if (!target) return c.skip('nothing was restored');
        const spec = NETHSM_KEYS[0]!;
        const pub = s.publicKeys.get(spec.id);
        if (!pub) return c.skip(`key ${spec.id} was not generated before the backup`);
        // Verified with the public key read from the original instance: same key, restored.
        c.detail('signatureBytes', await signAndVerify(target, s.conn, spec, pub));
      },
      after: (status, _s, ctx) => ctx.capability('nethsm:backup-restore', status === 'pass'),
    },
    {
      name: 'cleanup',
      async run(_c, s) {
        await s.fresh?.stop();
        s.fresh = undefined;
        for (const id of s.created) await s.client.deleteKey(s.admin, id);
      },
    },
  ],
  async teardown(_ctx, s) {
    await s.fresh?.stop();
  },
};
