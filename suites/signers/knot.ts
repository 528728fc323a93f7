/**
 * Knot DNS 3.2 (Debian knot + knot-dnssecutils): a keystore `backend: pkcs11` in a private knot.conf, and
 * `kzonesign` signs the zone file offline, generating a combined signing key (CSK) on the token through GnuTLS.
 * Where generation fails (Ed25519 on SoftHSM: GnuTLS 3.7 passes CKM_EDDSA to C_GenerateKeyPair), the harness's
 * key is imported with `keymgr import-pkcs11` (Knot keys are identified by their CKA_ID in hex).
 * https://www.knot-dns.cz/docs/3.2/html/configuration.html#dnssec-keys-on-a-pkcs-11-device
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runToolOk } from '../../src/proc.js';
import type { SignerKey } from '../../src/journal.js';
import { versionOf, runSignerTool } from './tool.js';
import { SignerFailed, pathsUnder, type DnssecAlgorithm, type Signer, type SignJob } from './signer.js';

const ALGORITHM_NAME: Record<DnssecAlgorithm, string> = { 8: 'rsasha256', 10: 'rsasha512', 13: 'ecdsap256sha256', 14: 'ecdsap384sha384', 15: 'ed25519' };

/** knot.conf for one job; it holds the PIN (Knot reads it only from its keystore configuration), so it is 0600. */
async function writeConfig(job: SignJob): Promise<string> {
  const t = job.target;
  const uri = `pkcs11:token=${encodeURIComponent(t.tokenLabel)};pin-value=${encodeURIComponent(t.pin)}`;
  const conf = [
    'server:',
    `    rundir: "${job.workDir}"`,
    'database:',
    `    storage: "${join(job.workDir, 'knot-db')}"`,
    'keystore:',
    '  - id: token',
    '    backend: pkcs11',
    `    config: "${uri} ${t.modulePath}"`,
    'policy:',
    '  - id: harness',
    '    keystore: token',
    `    algorithm: ${ALGORITHM_NAME[job.algorithm]}`,
    '    single-type-signing: on',
    // A key size is only valid for RSA.
    ...(job.algorithm === 8 || job.algorithm === 10 ? ['    ksk-size: 2048', '    zsk-size: 2048'] : []),
    'zone:',
    `  - domain: ${job.origin}`,
    `    file: "${job.zoneFile}"`,
    `    storage: "${job.workDir}"`,
    '    dnssec-signing: on',
    '    dnssec-policy: harness',
    '',
  ].join('\n');
  await mkdir(join(job.workDir, 'knot-db'), { recursive: true, mode: 0o700 });
  const path = join(job.workDir, 'knot.conf');
  await writeFile(path, conf, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

/**
 * The keys Knot made, from its KASP databases below `dir` (knot-db/keys/data.mdb, an LMDB): `keymgr -D` reads one
 * without the configuration, so without the keystore or the token. Knot's key id is the key's CKA_ID in hex (Knot
 * 3.2 sets no CKA_LABEL); a public-only key is not on the token.
 */
async function kaspKeys(dir: string, env: NodeJS.ProcessEnv): Promise<SignerKey[]> {
  const keys: SignerKey[] = [];
  for (const db of (await pathsUnder(dir, /^data\.mdb$/, 'file')).map(dirname)) {
    const keymgr = async (args: string[]) => (await runToolOk('keymgr', ['-D', db, ...args], { env, timeoutMs: 10_000 })).stdout;
    const zones = (await keymgr(['-l'])).split('\n').map((z) => z.trim());
    for (const zone of zones.filter(Boolean)) {
      const listed = JSON.parse(await keymgr(['-j', zone, 'list'])) as { id: string; 'public-only'?: boolean }[];
      for (const k of listed) if (!k['public-only'] && /^([0-9a-f]{2})+$/.test(k.id)) keys.push({ id: k.id });
    }
  }
  return keys;
}

export const knot: Signer = {
  id: 'knot',
  title: 'Knot DNS (kzonesign, keystore backend pkcs11)',
  packages: ['knot', 'knot-dnssecutils'],
  claims: {
    algorithms: [8, 10, 13, 14, 15],
    source: 'https://www.knot-dns.cz/docs/3.2/html/reference.html#policy-section (algorithm); keystore backend pkcs11',
  },
  async installed(env) {
    const v = await versionOf('kzonesign', ['-V'], env);
    if (!v) return { missing: 'kzonesign not found (apt-get install knot knot-dnssecutils)' };
    if (!(await versionOf('keymgr', ['-V'], env))) return { missing: 'keymgr not found (apt-get install knot)' };
    return { version: v.replace(/^kzonesign \(Knot DNS\), version /, 'Knot DNS ') };
  },
  profile: {
    // From Knot's and GnuTLS's documentation: key generation and signing through GnuTLS's PKCS#11 layer.
    functions: [
      'C_Initialize',
      'C_GetSlotList',
      'C_GetTokenInfo',
      'C_OpenSession',
      'C_Login',
      'C_FindObjectsInit',
      'C_FindObjects',
      'C_FindObjectsFinal',
      'C_GetAttributeValue',
      'C_GenerateKeyPair',
      'C_SignInit',
      'C_Sign',
    ],
    mechanisms: ['CKM_RSA_PKCS_KEY_PAIR_GEN', 'CKM_EC_KEY_PAIR_GEN', 'CKM_RSA_PKCS', 'CKM_ECDSA'],
    source:
      'https://www.knot-dns.cz/docs/3.2/html/configuration.html#dnssec-keys-on-a-pkcs-11-device; https://gnutls.org/manual/html_node/Smart-cards-and-HSMs.html',
  },
  async sign(job) {
    const conf = await writeConfig(job);
    const out = join(job.workDir, 'knot-out');
    await mkdir(out, { recursive: true, mode: 0o700 });
    if (job.harnessKey) {
      await runSignerTool(job, 'import key', 'keymgr', [
        '-c',
        conf,
        job.origin,
        'import-pkcs11',
        job.harnessKey.idHex,
        `algorithm=${ALGORITHM_NAME[job.algorithm]}`,
        'ksk=yes',
        'zsk=yes',
      ]);
    }
    try {
      await runSignerTool(job, 'sign', 'kzonesign', ['-c', conf, '-o', out, job.origin]);
    } catch (err) {
      // kzonesign makes its keys as it signs: a failure to make them is a key generation failure.
      if (!job.harnessKey && err instanceof SignerFailed && /key generation error/.test(err.message)) {
        throw new SignerFailed('keygen', err.message, err.exitCode, err.signal);
      }
      throw err;
    }
    return {
      signedZoneFile: join(out, basename(job.zoneFile)),
      keys: job.harnessKey ? 'made-by-harness' : 'made-by-signer',
      exposures: ['needs the PIN in clear in knot.conf (keystore config pin-value)'],
    };
  },
  keysMadeIn: kaspKeys,
};
