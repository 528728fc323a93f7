/**
 * BIND 9.20 (Debian bookworm-backports bind9-utils) through the OpenSSL 3 provider pkcs11-provider 1.0: a private
 * openssl.cnf (OPENSSL_CONF) loads the provider on the module under test; `dnssec-keygen -k POLICY -l FILE`
 * makes a combined signing key on the token through a `key-store` with a pkcs11-uri, and `dnssec-signzone -S -z`
 * signs the zone file offline. A harness key is referenced with `dnssec-keyfromlabel -l pkcs11:…` instead.
 * BIND 9.18 (bookworm) has no PKCS#11 at all: `-E` is accepted and ignored.
 * https://bind9.readthedocs.io/en/v9.20.0/chapter5.html#hsm-support (key-store, dnssec-keyfromlabel)
 *
 * As packaged, BIND aborts when the provider loads the module: pkcs11-provider dlopen()s it with RTLD_DEEPBIND, so
 * the module calls glibc's free() while BIND (linked with jemalloc) and libc itself allocate with jemalloc
 * ("free(): invalid pointer", SIGABRT through p11-kit-proxy; SIGSEGV in free() with SoftHSM loaded directly).
 * The `no-deepbind` workaround needs no rebuild: see NO_DEEPBIND.
 */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { SignerKey } from '../../src/journal.js';
import { probeTool, runSignerTool, versionOf } from './tool.js';
import { SignerFailed, pathsUnder, type DnssecAlgorithm, type Signer, type SignJob } from './signer.js';

const ALGORITHM_NAME: Record<DnssecAlgorithm, string> = { 8: 'RSASHA256', 10: 'RSASHA512', 13: 'ECDSAP256SHA256', 14: 'ECDSAP384SHA384', 15: 'ED25519' };

/**
 * Preloading glibc and libstdc++ puts their malloc/free and operator new/delete ahead of jemalloc's in the global
 * scope, so libc, BIND's libraries and the deep-bound module all use one allocator (BIND's own isc_mem keeps
 * jemalloc's non-standard mallocx/sdallocx). `no-deinit` keeps the provider from closing sessions in OpenSSL's
 * exit-time cleanup, which runs after the module's own destructors (SoftHSM then crashes in C_CloseSession).
 */
const NO_DEEPBIND = { preload: 'libc.so.6 libstdc++.so.6', quirks: 'no-deinit' };

/** The directory OpenSSL loads providers from (`openssl version -m`), where pkcs11-provider installs pkcs11.so. */
async function providerPath(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await probeTool('openssl', ['version', '-m'], env);
  const dir = /MODULESDIR: "([^"]+)"/.exec(r.stdout)?.[1];
  const path = dir && join(dir, 'pkcs11.so');
  return path && existsSync(path) ? path : undefined;
}

/** A pkcs11: URI path attribute value (RFC 7512 §2.3): everything but unreserved characters percent-encoded. */
function pct(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return [...bytes].map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
}

/** A pkcs11: URI path attribute's value decoded (RFC 7512 §2.3): the bytes it stands for. */
function unpct(value: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%' && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i]!, 'utf8'));
  }
  return Buffer.from(bytes);
}

/**
 * The keys BIND made, from its K*.private files below `dir`: a key on the token has a `Label:` line, the base64 of
 * its pkcs11: URI (NUL-terminated), whose object= is the CKA_LABEL and id= (when given) the CKA_ID. A key made in
 * software (a PrivateKey: line, no Label:) is not on the token.
 */
async function keyFileKeys(dir: string): Promise<SignerKey[]> {
  const keys: SignerKey[] = [];
  for (const file of await pathsUnder(dir, /^K.*\.private$/, 'file')) {
    const label = /^Label:\s*(\S+)/m.exec(await readFile(file, 'utf8'))?.[1];
    const uri = label && Buffer.from(label, 'base64').toString('utf8').replace(/\0+$/, '');
    if (!uri?.startsWith('pkcs11:')) continue;
    const attrs = new Map(
      uri
        .slice('pkcs11:'.length)
        .split('?')[0]!
        .split(';')
        .map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] as const),
    );
    const key: SignerKey = {};
    if (attrs.has('object')) key.label = unpct(attrs.get('object')!).toString('utf8');
    if (attrs.has('id')) key.id = unpct(attrs.get('id')!).toString('hex');
    if (key.label !== undefined || key.id !== undefined) keys.push(key);
  }
  return keys;
}

/** openssl.cnf loading pkcs11-provider on the module under test (the PIN is not in it: see sign). */
async function writeOpensslConfig(job: SignJob, dir: string, provider: string): Promise<string> {
  const conf = [
    'openssl_conf = openssl_init',
    '[openssl_init]',
    'providers = provider_sect',
    '[provider_sect]',
    'default = default_sect',
    'pkcs11 = pkcs11_sect',
    '[default_sect]',
    'activate = 1',
    '[pkcs11_sect]',
    `module = ${provider}`,
    `pkcs11-module-path = ${job.target.modulePath}`,
    ...(job.workaround === 'no-deepbind' ? [`pkcs11-module-quirks = ${NO_DEEPBIND.quirks}`] : []),
    'activate = 1',
    '',
  ].join('\n');
  const path = join(dir, 'openssl.cnf');
  await writeFile(path, conf, { mode: 0o600 });
  return path;
}

export const bind: Signer = {
  id: 'bind',
  title: 'BIND 9.20 (dnssec-keygen / dnssec-signzone through pkcs11-provider)',
  packages: ['bind9-utils', 'pkcs11-provider'],
  claims: {
    algorithms: [8, 10, 13, 14, 15],
    source:
      'https://bind9.readthedocs.io/en/v9.20.0/chapter5.html#hsm-support; https://bind9.readthedocs.io/en/v9.20.0/manpages.html#dnssec-keygen-dnssec-key-generation-tool',
  },
  workarounds: [
    {
      id: 'no-deepbind',
      description:
        `LD_PRELOAD="${NO_DEEPBIND.preload}" (glibc's allocator ahead of jemalloc, so the module pkcs11-provider loads with RTLD_DEEPBIND ` +
        `frees what libc allocated) and pkcs11-module-quirks = ${NO_DEEPBIND.quirks} (no session closing in OpenSSL's exit-time cleanup)`,
      source:
        'https://github.com/latchset/pkcs11-provider (dlopen with RTLD_DEEPBIND); https://bugzilla.mozilla.org/show_bug.cgi?id=493541#c4 (RTLD_DEEPBIND with jemalloc)',
    },
  ],
  async installed(env) {
    const v = await versionOf('dnssec-signzone', ['-V'], env);
    if (!v) return { missing: 'dnssec-signzone not found (apt-get install -t bookworm-backports bind9-utils pkcs11-provider)' };
    const [major, minor] = (/(\d+)\.(\d+)/.exec(v) ?? []).slice(1).map(Number);
    if (major === undefined || minor === undefined || major < 9 || (major === 9 && minor < 20)) {
      return { missing: `${v}: BIND before 9.20 has no PKCS#11 here (-E is accepted and ignored); install bind9-utils from bookworm-backports` };
    }
    if (!(await providerPath(env)))
      return { missing: "pkcs11-provider not found in OpenSSL's MODULESDIR (apt-get install -t bookworm-backports pkcs11-provider)" };
    return { version: `BIND ${v.replace(/^dnssec-signzone /, '')}` };
  },
  profile: {
    // BIND asks OpenSSL; pkcs11-provider turns that into PKCS#11 calls (its documentation and source).
    functions: [
      'C_Initialize',
      'C_GetInfo',
      'C_GetSlotList',
      'C_GetSlotInfo',
      'C_GetTokenInfo',
      'C_GetMechanismList',
      'C_OpenSession',
      'C_GetSessionInfo',
      'C_Login',
      'C_FindObjectsInit',
      'C_FindObjects',
      'C_FindObjectsFinal',
      'C_GetAttributeValue',
      'C_GenerateKeyPair',
      'C_SignInit',
      'C_Sign',
      'C_CloseSession',
      'C_Finalize',
    ],
    mechanisms: [
      'CKM_RSA_PKCS_KEY_PAIR_GEN',
      'CKM_EC_KEY_PAIR_GEN',
      'CKM_EC_EDWARDS_KEY_PAIR_GEN',
      'CKM_SHA256_RSA_PKCS',
      'CKM_SHA512_RSA_PKCS',
      'CKM_ECDSA',
      'CKM_EDDSA',
    ],
    source:
      'https://github.com/latchset/pkcs11-provider/blob/v1.0/docs/provider-pkcs11.7.md; https://bind9.readthedocs.io/en/v9.20.0/chapter5.html#hsm-support',
  },
  async sign(job) {
    const provider = await providerPath(job.target.env);
    if (!provider) throw new SignerFailed('prepare', "pkcs11-provider not found in OpenSSL's MODULESDIR");
    // A directory of its own per call: a second call for the same case (with the harness's key) starts clean.
    const dir = await mkdtemp(join(job.workDir, 'bind-'));
    const env: NodeJS.ProcessEnv = { ...job.target.env, OPENSSL_CONF: await writeOpensslConfig(job, dir, provider) };
    if (job.workaround === 'no-deepbind') env.LD_PRELOAD = [NO_DEEPBIND.preload, env.LD_PRELOAD].filter(Boolean).join(' ');
    const keys = join(dir, 'keys');
    await mkdir(keys, { recursive: true, mode: 0o700 });
    // The PIN goes with the token's URI (pin-source), not into the provider's configuration: pkcs11-provider logs in
    // with a configured PIN on whichever slot it picked for an operation, another token of the module included.
    const pinFile = join(dir, 'pin');
    await writeFile(pinFile, `${job.target.pin}\n`, { mode: 0o600 });
    const token = `pkcs11:token=${pct(job.target.tokenLabel)};serial=${pct(job.target.tokenSerial)};pin-source=${pct(`file:${pinFile}`)}`;
    const algorithm = ALGORITHM_NAME[job.algorithm];
    if (job.harnessKey) {
      const label = `${token};object=${pct(job.harnessKey.label)};id=${pct(Buffer.from(job.harnessKey.idHex, 'hex'))}`;
      await runSignerTool(job, 'import key', 'dnssec-keyfromlabel', ['-K', keys, '-f', 'KSK', '-a', algorithm, '-l', label, job.origin], { env });
    } else {
      // BIND names the objects "<zone>-<policy>-<role>-<time>" whatever object= the key-store's URI says, so the
      // policy carries the label prefix.
      const policy = `${job.target.labelPrefix}${job.algorithm}`;
      const conf = join(dir, 'policy.conf');
      await writeFile(
        conf,
        `key-store "token" { directory "${keys}"; pkcs11-uri "${token}"; };\n` +
          `dnssec-policy "${policy}" { keys { csk key-store "token" lifetime unlimited algorithm ${algorithm.toLowerCase()}; }; };\n`,
      );
      await runSignerTool(job, 'keygen', 'dnssec-keygen', ['-K', keys, '-k', policy, '-l', conf, job.origin], { env });
      // BIND 9.20 makes an Ed25519 key with OpenSSL's default provider and writes its raw private key beside the
      // token label (the provider is never asked): that key is not on the token.
      for (const f of (await readdir(keys)).filter((n) => n.endsWith('.private'))) {
        if (/^PrivateKey:/m.test(await readFile(join(keys, f), 'utf8'))) {
          throw new SignerFailed(
            'keygen',
            `dnssec-keygen made the ${algorithm} key in software, not on the token (its .private file holds the raw private key)`,
            0,
          );
        }
      }
    }
    const signed = join(dir, 'signed.zone');
    // -S: the keys in -K; -z: the one key (a KSK, as dnssec-signzone needs a self-signed KSK) signs every RRset;
    // -O full: one record per line, every owner name written out.
    await runSignerTool(job, 'sign', 'dnssec-signzone', ['-S', '-z', '-O', 'full', '-K', keys, '-d', dir, '-o', job.origin, '-f', signed, job.zoneFile], {
      env,
    });
    return {
      signedZoneFile: signed,
      keys: job.harnessKey ? 'made-by-harness' : 'made-by-signer',
      exposures: [
        "pkcs11-provider reads the PIN from a file named in the key's pkcs11: URI (pin-source), or from its configuration: kept in a 0600 file in the run directory",
      ],
    };
  },
  keysMadeIn: keyFileKeys,
};
