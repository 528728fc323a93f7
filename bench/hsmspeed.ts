/**
 * Side by side with OpenDNSSEC's ods-hsmspeed (Debian libhsm-bin; source: opendnssec/libhsm/src/bin/hsmspeed.c):
 * generate a conf.xml for the same token and run `ods-hsmspeed -s 2048 -t T -i N`. The harness runs the same
 * method in its signer threads (bench/threads.ts with hsmspeedInput: RSA-2048, SHA-1 + DigestInfo in
 * software, CKM_RSA_PKCS, one session per thread, C_SignInit per signature, rate = all signatures / wall
 * time). The ratio harness/ods-hsmspeed shows how much the harness itself costs.
 */
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../src/proc.js';
import { esc } from '../src/reports/page.js';
import { redact } from '../src/secrets.js';

export const HSMSPEED_TOOL = process.env.HSM_HARNESS_HSMSPEED ?? '/usr/bin/ods-hsmspeed';

export interface HsmspeedResult {
  threads: number;
  iterationsPerThread: number;
  rate: number;
  bits: number;
  line: string;
}

// hsmspeed.c prints exactly this on stdout: "thread" for one, "threads" otherwise, the rate with 2 decimals.
const RESULT_LINE = /^(\d+) (thread|threads), (\d+) signatures per thread, (\d+\.\d{2}) sig\/s \(RSA (\d+) bits\)$/;

/** Parse ods-hsmspeed's stdout. Anything but the one result line is a tool failure. */
export function parseHsmspeedOutput(stdout: string): HsmspeedResult {
  const text = stdout.replace(/\r?\n$/, '');
  const m = RESULT_LINE.exec(text);
  if (!m) throw new Error(`ods-hsmspeed printed something other than its result line: ${JSON.stringify(redact(text.slice(0, 200)))}`);
  const threads = Number(m[1]);
  if ((threads === 1) !== (m[2] === 'thread')) throw new Error(`ods-hsmspeed result line has "${m[2]}" for ${threads} thread(s): ${JSON.stringify(text)}`);
  return { threads, iterationsPerThread: Number(m[3]), rate: Number(m[4]), bits: Number(m[5]), line: text };
}

export interface HsmspeedRepository {
  name: string;
  modulePath: string;
  tokenLabel: string;
  pin: string;
}

/** conf.xml with the repository list plus the minimal Common, Enforcer and Signer sections. */
export function hsmspeedConfXml(repo: HsmspeedRepository, workDir: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Configuration>
  <RepositoryList>
    <Repository name="${esc(repo.name)}">
      <Module>${esc(repo.modulePath)}</Module>
      <TokenLabel>${esc(repo.tokenLabel)}</TokenLabel>
      <PIN>${esc(repo.pin)}</PIN>
    </Repository>
  </RepositoryList>
  <Common>
    <Logging><Syslog><Facility>local0</Facility></Syslog></Logging>
    <PolicyFile>${esc(join(workDir, 'kasp.xml'))}</PolicyFile>
    <ZoneListFile>${esc(join(workDir, 'zonelist.xml'))}</ZoneListFile>
  </Common>
  <Enforcer>
    <Datastore><SQLite>${esc(join(workDir, 'kasp.db'))}</SQLite></Datastore>
  </Enforcer>
  <Signer>
    <WorkingDirectory>${esc(join(workDir, 'signer'))}</WorkingDirectory>
  </Signer>
</Configuration>
`;
}

/** Write conf.xml (mode 0600 from its creation: it holds the PIN) into a private temporary directory. */
export async function writeHsmspeedConf(dir: string, repo: HsmspeedRepository): Promise<string> {
  const path = join(dir, 'conf.xml');
  await writeFile(path, hsmspeedConfXml(repo, dir), { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

/**
 * Run ods-hsmspeed on conf.xml, and delete conf.xml (it holds the PIN) as soon as the tool has read it:
 * ods-hsmspeed prints "Opening HSM Library..." on stderr, then parses conf.xml and opens the module, then
 * prints its next line; the file is not read again. It is deleted at the end in any case.
 */
export async function runHsmspeed(
  confPath: string,
  repository: string,
  threads: number,
  iterations: number,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<HsmspeedResult> {
  let stderr = '';
  let removal: Promise<void> | undefined;
  const onStderr = (chunk: string) => {
    stderr += chunk;
    if (!removal && /Opening HSM Library\.\.\.\n.+\n/.test(stderr)) removal = rm(confPath, { force: true });
  };
  let r: Awaited<ReturnType<typeof runTool>>;
  try {
    const args = ['-c', confPath, '-r', repository, '-s', '2048', '-t', String(threads), '-i', String(iterations)];
    r = await runTool(HSMSPEED_TOOL, args, { env, timeoutMs, onStderr });
  } finally {
    await removal;
    await rm(confPath, { force: true });
  }
  if (r.code !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    throw new Error(
      redact(`ods-hsmspeed failed (${r.signal ?? `exit ${r.code}`}${r.signal === 'SIGKILL' ? `, time limit ${Math.round(timeoutMs / 1000)} s` : ''}): ${last}`),
    );
  }
  const result = parseHsmspeedOutput(r.stdout);
  if (result.threads !== threads || result.iterationsPerThread !== iterations) {
    throw new Error(`ods-hsmspeed reports ${result.threads} threads × ${result.iterationsPerThread}, asked for ${threads} × ${iterations}`);
  }
  return result;
}
