/**
 * OpenDNSSEC 2.1 (Debian opendnssec: ods-enforcerd + ods-signerd, sqlite datastore). A KASP policy with one KSK
 * and one ZSK on the token (the enforcer's key factory generates them; it labels each key with its CKA_ID in hex,
 * so the suite finds them by what appeared on the token, not by labelPrefix); the enforcer writes the signer
 * configuration, the signer signs the zone file into another file as soon as it starts.
 * https://wiki.opendnssec.org/display/DOCS20/ (conf.xml, kasp.xml, ods-enforcer, ods-signer)
 *
 * Some paths are compiled in: ods-enforcer-db-setup reads /etc/opendnssec/conf.xml, the signer's socket and pid
 * file are /run/opendnssec/engine.sock and signerd.pid (conf.xml has no setting for them). So every OpenDNSSEC
 * process runs in a private mount namespace where the job's own directories are bound over /etc/opendnssec and
 * /run/opendnssec: nothing outside the job's directory is read or written. The PIN is in conf.xml (0600).
 *
 * Both daemons run in the foreground (-d) and are killed with their process groups at the end (`ods-enforcer
 * stop` can hang). The signer is started only once the enforcer has written the signer configuration: started
 * right after the enforcer it sometimes aborts in engine_recover.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { esc } from '../../src/reports/page.js';
import { runToolOk } from '../../src/proc.js';
import type { SignerKey } from '../../src/journal.js';
import { startDaemon, waitUntil, type Daemon } from './daemon.js';
import { runSignerTool, versionOf } from './tool.js';
import { SignerFailed, pathsUnder, type DnssecAlgorithm, type Signer, type SignJob } from './signer.js';

const KEY_LENGTH: Record<DnssecAlgorithm, number> = { 8: 2048, 10: 2048, 13: 256, 14: 384, 15: 256 };
const POLICY = 'harness';
const COMPILED_IN = { etc: '/etc/opendnssec', run: '/run/opendnssec' };
/** How long the enforcer may take to start, make the keys and write the signer configuration (signing may take the whole job). */
const STEP_MS = 60_000;
/** Log lines that end the wait at once (the daemons log an error and carry on, retrying later). */
const ENFORCER_ERROR = /\] (error|crit)\s*:(?!.*unable to notify signer)/;
const SIGNER_ERROR = /\] (error|crit)\s*:/;

interface Layout {
  etc: string;
  run: string;
  signconf: string;
  unsigned: string;
  signed: string;
}

async function writeConfiguration(job: SignJob, dir: string): Promise<Layout> {
  const l: Layout = {
    etc: join(dir, 'etc'),
    run: join(dir, 'run'),
    signconf: join(dir, 'signconf.xml'),
    unsigned: join(dir, 'unsigned.zone'),
    signed: join(dir, 'signed.zone'),
  };
  for (const d of [l.etc, l.run, join(dir, 'enforcer'), join(dir, 'signer')]) await mkdir(d, { recursive: true, mode: 0o700 });
  const t = job.target;
  const conf = `<?xml version="1.0" encoding="UTF-8"?>
<Configuration>
  <RepositoryList>
    <Repository name="token">
      <Module>${esc(t.modulePath)}</Module>
      <TokenLabel>${esc(t.tokenLabel)}</TokenLabel>
      <PIN>${esc(t.pin)}</PIN>
    </Repository>
  </RepositoryList>
  <Common>
    <Logging><Verbosity>3</Verbosity></Logging>
    <PolicyFile>${l.etc}/kasp.xml</PolicyFile>
    <ZoneListFile>${l.etc}/zonelist.xml</ZoneListFile>
  </Common>
  <Enforcer>
    <Datastore><SQLite>${dir}/kasp.db</SQLite></Datastore>
    <AutomaticKeyGenerationPeriod>PT1H</AutomaticKeyGenerationPeriod>
    <WorkingDirectory>${dir}/enforcer</WorkingDirectory>
    <WorkerThreads>1</WorkerThreads>
  </Enforcer>
  <Signer>
    <WorkingDirectory>${dir}/signer</WorkingDirectory>
    <WorkerThreads>1</WorkerThreads>
    <SignerThreads>1</SignerThreads>
  </Signer>
</Configuration>
`;
  await writeFile(join(l.etc, 'conf.xml'), conf, { mode: 0o600 });
  // Zero propagation delays and no jitter: the first keys are published and active at once, nothing waits for a TTL.
  const key = (role: 'KSK' | 'ZSK') =>
    `<${role}><Algorithm length="${KEY_LENGTH[job.algorithm]}">${job.algorithm}</Algorithm><Lifetime>P10Y</Lifetime><Repository>token</Repository></${role}>`;
  const kasp = `<?xml version="1.0" encoding="UTF-8"?>
<KASP>
  <Policy name="${POLICY}">
    <Description>hsm-harness: one KSK and one ZSK on the token under test</Description>
    <Signatures>
      <Resign>PT2H</Resign><Refresh>P3D</Refresh>
      <Validity><Default>P14D</Default><Denial>P14D</Denial></Validity>
      <Jitter>PT0S</Jitter><InceptionOffset>PT3600S</InceptionOffset><MaxZoneTTL>P1D</MaxZoneTTL>
    </Signatures>
    <Denial><NSEC/></Denial>
    <Keys>
      <TTL>PT3600S</TTL><RetireSafety>PT3600S</RetireSafety><PublishSafety>PT3600S</PublishSafety><Purge>P14D</Purge>
      ${key('KSK')}
      ${key('ZSK')}
    </Keys>
    <Zone><PropagationDelay>PT0S</PropagationDelay><SOA><TTL>PT3600S</TTL><Minimum>PT3600S</Minimum><Serial>keep</Serial></SOA></Zone>
    <Parent><PropagationDelay>PT0S</PropagationDelay><DS><TTL>PT3600S</TTL></DS><SOA><TTL>PT3600S</TTL><Minimum>PT3600S</Minimum></SOA></Parent>
  </Policy>
</KASP>
`;
  await writeFile(join(l.etc, 'kasp.xml'), kasp);
  await writeFile(join(l.etc, 'zonelist.xml'), '<?xml version="1.0" encoding="UTF-8"?>\n<ZoneList>\n</ZoneList>\n');
  // The signer reads its input by the path in the zone list: a copy inside the job's directory.
  await writeFile(l.unsigned, await readFile(job.zoneFile));
  return l;
}

/** The command line that runs cmd with the job's directories bound over OpenDNSSEC's compiled-in ones. */
function inNamespace(l: Layout, cmd: string, args: string[]): [string, string[]] {
  // Debian's tmpfiles.d creates /run/opendnssec at boot; a system that never ran it gets the same empty directory.
  const script = `[ -d ${COMPILED_IN.run} ] || mkdir -p ${COMPILED_IN.run}; mount --bind "$ODS_ETC" ${COMPILED_IN.etc} && mount --bind "$ODS_RUN" ${COMPILED_IN.run} && exec "$@"`;
  return ['env', [`ODS_ETC=${l.etc}`, `ODS_RUN=${l.run}`, 'unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', cmd, ...args]];
}

export const opendnssec: Signer = {
  id: 'opendnssec',
  title: 'OpenDNSSEC 2.1 (ods-enforcerd + ods-signerd)',
  packages: ['opendnssec', 'opendnssec-enforcer-sqlite3'],
  slow: true,
  claims: {
    algorithms: [8, 10, 13, 14, 15],
    source: 'https://wiki.opendnssec.org/display/DOCS20/kasp.xml (Keys: Algorithm); OpenDNSSEC 2.1 NEWS (Ed25519, Ed448)',
  },
  async installed(env) {
    const v = await versionOf('ods-signerd', ['-V'], env);
    if (!v) return { missing: 'ods-signerd not found (apt-get install opendnssec)' };
    for (const tool of ['ods-enforcerd', 'ods-enforcer', 'ods-enforcer-db-setup']) {
      if (!(await versionOf(tool, ['-V'], env))) return { missing: `${tool} not found (apt-get install opendnssec opendnssec-enforcer-sqlite3)` };
    }
    if (!existsSync(COMPILED_IN.etc)) return { missing: `${COMPILED_IN.etc} is missing (it is where the namespace binds the run's configuration)` };
    return { version: `OpenDNSSEC ${/(\d+\.\d+\.\d+)/.exec(v)?.[1] ?? v}` };
  },
  profile: {
    // libhsm (OpenDNSSEC's PKCS#11 layer): keys are generated with a random CKA_ID, found by it, signed with raw
    // mechanisms over a DigestInfo/hash it computes itself; `key purge` destroys keys.
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
      'C_GenerateRandom',
      'C_SignInit',
      'C_Sign',
      'C_DestroyObject',
      'C_Logout',
      'C_CloseSession',
      'C_Finalize',
    ],
    mechanisms: ['CKM_RSA_PKCS_KEY_PAIR_GEN', 'CKM_EC_KEY_PAIR_GEN', 'CKM_EC_EDWARDS_KEY_PAIR_GEN', 'CKM_RSA_PKCS', 'CKM_ECDSA', 'CKM_EDDSA'],
    source: 'https://github.com/opendnssec/opendnssec/blob/2.1.12/libhsm/src/lib/libhsm.c',
  },
  async sign(job) {
    if (job.harnessKey) {
      throw new SignerFailed('import key', 'this harness does not import keys into OpenDNSSEC (it generates its own through its key factory)');
    }
    const dir = await mkdtemp(join(job.workDir, 'ods-'));
    const l = await writeConfiguration(job, dir);
    const env = job.target.env;
    const ods = (cmd: string, args: string[]) => inNamespace(l, cmd, args);
    const tool = async (stage: string, cmd: string, args: string[]) => {
      const [c, a] = ods(cmd, args);
      return runSignerTool(job, stage, c, a, { env });
    };
    const socket = ['-s', join(COMPILED_IN.run, 'enforcer.sock')];
    await tool('prepare', 'ods-enforcer-db-setup', ['-f']);
    const daemons: Daemon[] = [];
    try {
      const [ec, ea] = ods('ods-enforcerd', ['-d']);
      const enforcer = await startDaemon(job, 'ods-enforcerd', ec, ea, env, ['ods-enforcerd', '-d']);
      daemons.push(enforcer);
      await waitUntil(enforcer, 'its socket', async () => existsSync(join(l.run, 'enforcer.sock')), { ms: Math.min(STEP_MS, job.timeoutMs) });
      await tool('keygen', 'ods-enforcer', [...socket, 'policy', 'import']);
      await tool('keygen', 'ods-enforcer', [
        ...socket,
        'zone',
        'add',
        '--zone',
        job.origin,
        '--policy',
        POLICY,
        '--input',
        l.unsigned,
        '--output',
        l.signed,
        '--signerconf',
        l.signconf,
      ]);
      // The key factory makes the keys; the enforcer then names them in the signer configuration.
      await waitUntil(enforcer, 'a signer configuration with a KSK and a ZSK', async () => hasKeys(l.signconf), {
        ms: Math.min(STEP_MS, job.timeoutMs),
        stage: 'keygen',
        failOn: ENFORCER_ERROR,
      });
      await tool('keygen', 'ods-enforcer', [...socket, 'zonelist', 'export']);
      const [sc, sa] = ods('ods-signerd', ['-d']);
      const signer = await startDaemon(job, 'ods-signerd', sc, sa, env, ['ods-signerd', '-d']);
      daemons.push(signer);
      // The signer logs its statistics once the signed zone is written.
      const done = async () =>
        existsSync(l.signed) && new RegExp(`\\[STATS\\] ${job.origin.replace(/\.$/, '').replace(/\./g, '\\.')} `).test(await signer.log());
      await waitUntil(signer, 'the signed zone', done, { ms: job.timeoutMs, stage: 'sign', failOn: SIGNER_ERROR });
      return {
        signedZoneFile: l.signed,
        keys: 'made-by-signer',
        exposures: ['OpenDNSSEC reads the PIN from conf.xml (<Repository><PIN>): written 0600 in the run directory'],
      };
    } finally {
      // Signer first: it holds the keys the enforcer's database names.
      for (const d of daemons.reverse()) await d.stop();
    }
  },
  keysMadeIn: enforcerKeys,
};

/**
 * The keys OpenDNSSEC made, from the enforcer's databases below `dir` (kasp.db, table hsmKey): a key's locator is
 * its CKA_ID in hex (libhsm). Read with the sqlite3 shell, read-only; the enforcer need not run.
 */
async function enforcerKeys(dir: string, env: NodeJS.ProcessEnv): Promise<SignerKey[]> {
  const keys: SignerKey[] = [];
  for (const db of await pathsUnder(dir, /^kasp\.db$/, 'file')) {
    const r = await runToolOk('sqlite3', ['-readonly', '-json', db, 'SELECT locator FROM hsmKey'], { env, timeoutMs: 10_000 });
    const rows = r.stdout.trim() ? (JSON.parse(r.stdout) as { locator: string }[]) : [];
    for (const { locator } of rows) if (/^([0-9a-fA-F]{2})+$/.test(locator)) keys.push({ id: locator.toLowerCase() });
  }
  return keys;
}

/** Does the signer configuration name both a KSK and a ZSK (each with its locator, the CKA_ID in hex)? */
async function hasKeys(signconf: string): Promise<boolean> {
  const text = await readFile(signconf, 'utf8').catch(() => '');
  return /<KSK\/>/.test(text) && /<ZSK\/>/.test(text) && /<\/SignerConfiguration>/.test(text);
}
