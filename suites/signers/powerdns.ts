/**
 * PowerDNS Authoritative 4.7 (Debian pdns-server + pdns-backend-sqlite3, PKCS#11 compiled in): a private
 * pdns.conf and sqlite database in the job's directory; `pdnsutil load-zone`, `pdnsutil hsm assign` (one KSK that
 * signs every RRset) and `pdnsutil hsm create-key`. PowerDNS signs as it serves, never into a file, so the signed
 * zone is what pdns_server, started on 127.0.0.1 on a free port, answers to an AXFR (drill, from ldnsutils).
 * PowerDNS picks the module by its p11-kit name (SignerTarget.moduleName) and the token by label.
 * https://doc.powerdns.com/authoritative/dnssec/pkcs11.html
 *
 * `hsm assign` takes the PIN as an argument (visible in /proc/PID/cmdline while it runs) and stores it in clear in
 * the database (cryptokeys.content): both are reported as exposures; the database lives only in the job's directory.
 */
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { runTool, which } from '../../src/proc.js';
import { freePort, startDaemon, tcpOpen, waitUntil } from './daemon.js';
import { lastWords, probeTool, runSignerTool } from './tool.js';
import { SignerFailed, type DnssecAlgorithm, type Signer, type SignJob, type SignOutcome } from './signer.js';
import { makeTempDir } from '../../src/fsutil.js';

const ALGORITHM_NAME: Record<DnssecAlgorithm, string> = { 8: 'rsasha256', 10: 'rsasha512', 13: 'ecdsa256', 14: 'ecdsa384', 15: 'ed25519' };
const KEY_BITS: Record<DnssecAlgorithm, number> = { 8: 2048, 10: 2048, 13: 256, 14: 384, 15: 256 };
/** Where Debian's pdns-backend-sqlite3 installs the schema (not under /usr/share/doc, which slim images drop). */
const SCHEMA = '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql';
const READY_MS = 15_000;

async function writeConfig(dir: string, socketDir: string, port: number): Promise<void> {
  const conf = [
    'launch=gsqlite3',
    `gsqlite3-database=${join(dir, 'pdns.sqlite3')}`,
    'gsqlite3-dnssec=yes',
    'local-address=127.0.0.1',
    `local-port=${port}`,
    `socket-dir=${socketDir}`,
    'disable-axfr=no',
    'allow-axfr-ips=127.0.0.1',
    // In the foreground, one process, no privilege change, no outgoing queries (security polling), few threads.
    'daemon=no',
    'guardian=no',
    'write-pid=no',
    'setuid=',
    'setgid=',
    'security-poll-suffix=',
    'receiver-threads=1',
    'distributor-threads=1',
    'signing-threads=1',
    '',
  ].join('\n');
  await writeFile(join(dir, 'pdns.conf'), conf, { mode: 0o600 });
}

export const powerdns: Signer = {
  id: 'powerdns',
  title: 'PowerDNS Authoritative (pdnsutil hsm, pdns_server AXFR)',
  packages: ['pdns-server', 'pdns-backend-sqlite3', 'sqlite3', 'ldnsutils'],
  claims: { algorithms: [8, 10, 13, 14], source: 'https://doc.powerdns.com/authoritative/dnssec/pkcs11.html (RSA and ECDSA keys only)' },
  async installed(env) {
    // pdns_server --version exits 99, after naming the version and the compiled-in features (PKCS#11 among them).
    const r = await probeTool('pdns_server', ['--version'], env);
    const text = r.stdout + r.stderr;
    const v = /PowerDNS Authoritative Server (\S+)/.exec(text)?.[1];
    if (!v) return { missing: 'pdns_server not found (apt-get install pdns-server pdns-backend-sqlite3)' };
    if (!/^.*Features:.*\bPKCS#11\b/m.test(text)) return { missing: `PowerDNS ${v} is built without PKCS#11 support` };
    if (!(await which('pdnsutil'))) return { missing: 'pdnsutil not found (apt-get install pdns-server)' };
    if (!existsSync(SCHEMA)) return { missing: `${SCHEMA} not found (apt-get install pdns-backend-sqlite3)` };
    if (!(await which('sqlite3'))) return { missing: 'sqlite3 not found (apt-get install sqlite3)' };
    if (!(await which('drill'))) return { missing: 'drill not found (apt-get install ldnsutils)' };
    return { version: `PowerDNS ${v}` };
  },
  profile: {
    // PowerDNS's pkcs11signers.cc: it hashes on the token (C_Digest) and signs with the hash-and-sign mechanisms.
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
      'C_DigestInit',
      'C_Digest',
      'C_CloseSession',
      'C_Finalize',
    ],
    mechanisms: [
      'CKM_RSA_PKCS_KEY_PAIR_GEN',
      'CKM_EC_KEY_PAIR_GEN',
      'CKM_SHA256_RSA_PKCS',
      'CKM_SHA512_RSA_PKCS',
      'CKM_ECDSA',
      'CKM_SHA256',
      'CKM_SHA384',
      'CKM_SHA_1',
    ],
    source: 'https://github.com/PowerDNS/pdns/blob/rel/auth-4.7.x/pdns/pkcs11signers.cc',
  },
  async sign(job) {
    // A directory of its own per call: a second call for the same case (with the harness's key) starts clean.
    const dir = await mkdtemp(join(job.workDir, 'pdns-'));
    const port = await freePort();
    // The control socket's path must fit a sockaddr_un (108 bytes): a short journalled directory of its own, not
    // the job's deep one.
    const sockets = await makeTempDir('pdns');
    try {
      return await signIn(job, dir, sockets.path, port);
    } finally {
      await sockets.remove();
    }
  },
};

async function signIn(job: SignJob, dir: string, socketDir: string, port: number): Promise<SignOutcome> {
  await writeConfig(dir, socketDir, port);
  const env = job.target.env;
  const db = join(dir, 'pdns.sqlite3');
  await runSignerTool(job, 'prepare', 'sqlite3', [db, `.read ${SCHEMA}`]);
  // The database will hold the PIN in clear.
  await chmod(db, 0o600);
  // `--` ends pdnsutil's options: the PIN is a positional argument of `hsm assign`, and a random PIN may start with '-'.
  const pdnsutil = (stage: string, args: string[]) => runSignerTool(job, stage, 'pdnsutil', [`--config-dir=${dir}`, '--', ...args], { env });
  await pdnsutil('load zone', ['load-zone', job.origin, job.zoneFile]);
  const label = job.harnessKey?.label ?? `${job.target.labelPrefix}${job.algorithm}`;
  const t = job.target;
  const assigned = await pdnsutil(job.harnessKey ? 'import key' : 'keygen', [
    'hsm',
    'assign',
    job.origin,
    ALGORITHM_NAME[job.algorithm],
    'ksk',
    t.moduleName,
    t.tokenLabel,
    t.pin,
    label,
  ]);
  if (!job.harnessKey) {
    const id = /with key id (\d+)/.exec(assigned.stdout + assigned.stderr)?.[1];
    if (!id) throw new SignerFailed('keygen', `pdnsutil hsm assign did not name the key id: ${lastWords(assigned)}`, assigned.code);
    // `hsm create-key` can make the key on the token and then abort on its way out: that is its outcome.
    await pdnsutil('keygen', ['hsm', 'create-key', job.origin, id, String(KEY_BITS[job.algorithm])]);
  }
  const server = await startDaemon(job, 'pdns_server', 'pdns_server', [`--config-dir=${dir}`], env);
  try {
    await waitUntil(server, 'listening on 127.0.0.1', () => tcpOpen(port), { ms: Math.min(READY_MS, job.timeoutMs) });
    // drill prints the transfer as master file lines; an error or an unsigned answer fails verification later.
    const axfr = await runTool('drill', ['-p', String(port), 'axfr', job.origin, '@127.0.0.1'], { env, timeoutMs: job.timeoutMs });
    // A server that crashed while signing may still be on its way down when drill returns.
    if (axfr.code !== 0 || !/\sRRSIG\s/.test(axfr.stdout)) await server.ended(1_000);
    const exit = server.exit();
    if (exit) throw new SignerFailed('sign', `pdns_server: ${await server.lastWords()}`, exit.code, exit.signal);
    if (axfr.code !== 0 || !/\sRRSIG\s/.test(axfr.stdout)) {
      throw new SignerFailed('sign', `no signed AXFR (${lastWords(axfr, 1)}); pdns_server: ${await server.lastWords()}`, axfr.code, axfr.signal);
    }
    const signed = join(dir, 'signed.zone');
    await writeFile(signed, axfr.stdout);
    return {
      signedZoneFile: signed,
      keys: job.harnessKey ? 'made-by-harness' : 'made-by-signer',
      exposures: [
        'pdnsutil hsm assign takes the PIN as a command-line argument (readable in /proc/PID/cmdline while it runs)',
        'PowerDNS stores the PIN in clear in its database (cryptokeys.content "PIN:"); the database was 0600 in the run directory',
      ],
    };
  } finally {
    // `pdns_control quit` lets pdns_server exit through exit(), which flushes pkcs11-spy's log; a SIGTERM ends it
    // without, and the trace then lacks the daemon's C_Sign calls. Bounded; stop() follows whatever happened.
    if (!server.exit()) {
      await runTool('pdns_control', [`--config-dir=${dir}`, `--socket-dir=${socketDir}`, 'quit'], { env, timeoutMs: 5_000 }).catch(() => undefined);
      await server.ended(5_000);
    }
    await server.stop();
  }
}
