/**
 * Side by side with OpenDNSSEC's ods-hsmspeed (Debian libhsm-bin; bench.md §1): generate a conf.xml for
 * the same token, run `ods-hsmspeed -s 2048 -t T -i N`, and measure the harness with the same method
 * (RSA-2048, SHA-1 + DigestInfo in software, CKM_RSA_PKCS, one session per thread, C_SignInit per
 * signature, rate = all signatures / wall time). The ratio harness/ods-hsmspeed shows how much the
 * harness itself costs.
 */
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pkcs11, type Token } from '../src/pkcs11/token.js';
import { digestInfo, type KeyPair } from '../src/pkcs11/keys.js';
import { runTool } from '../src/proc.js';
import { redact } from '../src/secrets.js';
import { projectRoot } from '../src/paths.js';
import type { HsmspeedThreadData } from './hsmspeed-thread.js';
import { SIGNED_DATA } from './signed-data.js';

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

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
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
    <Repository name="${xmlEscape(repo.name)}">
      <Module>${xmlEscape(repo.modulePath)}</Module>
      <TokenLabel>${xmlEscape(repo.tokenLabel)}</TokenLabel>
      <PIN>${xmlEscape(repo.pin)}</PIN>
    </Repository>
  </RepositoryList>
  <Common>
    <Logging><Syslog><Facility>local0</Facility></Syslog></Logging>
    <PolicyFile>${xmlEscape(join(workDir, 'kasp.xml'))}</PolicyFile>
    <ZoneListFile>${xmlEscape(join(workDir, 'zonelist.xml'))}</ZoneListFile>
  </Common>
  <Enforcer>
    <Datastore><SQLite>${xmlEscape(join(workDir, 'kasp.db'))}</SQLite></Datastore>
  </Enforcer>
  <Signer>
    <WorkingDirectory>${xmlEscape(join(workDir, 'signer'))}</WorkingDirectory>
  </Signer>
</Configuration>
`;
}

/** Write conf.xml (mode 0600: it holds the PIN) into a private temporary directory. */
export async function writeHsmspeedConf(dir: string, repo: HsmspeedRepository): Promise<string> {
  const path = join(dir, 'conf.xml');
  await writeFile(path, hsmspeedConfXml(repo, dir), { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

export async function runHsmspeed(confPath: string, repository: string, threads: number, iterations: number, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<HsmspeedResult> {
  const r = await runTool(HSMSPEED_TOOL, ['-c', confPath, '-r', repository, '-s', '2048', '-t', String(threads), '-i', String(iterations)], { env, timeoutMs });
  if (r.code !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    throw new Error(redact(`ods-hsmspeed failed (${r.signal ?? `exit ${r.code}`}${r.signal === 'SIGKILL' ? `, time limit ${Math.round(timeoutMs / 1000)} s` : ''}): ${last}`));
  }
  const result = parseHsmspeedOutput(r.stdout);
  if (result.threads !== threads || result.iterationsPerThread !== iterations) {
    throw new Error(`ods-hsmspeed reports ${result.threads} threads × ${result.iterationsPerThread}, asked for ${threads} × ${iterations}`);
  }
  return result;
}

function threadScript(): string {
  const here = fileURLToPath(import.meta.url);
  // Tests import the TypeScript source; threads always run the build.
  if (here.endsWith('.js')) return join(here, '..', 'hsmspeed-thread.js');
  const built = join(projectRoot(), 'dist', 'bench', 'hsmspeed-thread.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run npm run build first');
  return built;
}

/**
 * The harness with ods-hsmspeed's method: `threads` OS threads, one session each, blocking calls.
 * Returns signatures per second over the wall time from the common start to the last thread's finish.
 */
export async function harnessThreads(token: Token, pin: string, key: KeyPair, threads: number, iterations: number): Promise<number> {
  const shared = new SharedArrayBuffer(8 + 8 * threads);
  const workers: Worker[] = [];
  try {
    const exited: Promise<unknown>[] = [];
    for (let index = 0; index < threads; index++) {
      const data: HsmspeedThreadData = {
        modulePath: token.module.path, slot: new Uint8Array(token.slot), keyId: new Uint8Array(key.id), pin,
        iterations, index, shared,
      };
      const w = new Worker(threadScript(), { workerData: data });
      workers.push(w);
      const failed = new Promise((_, reject) => w.once('error', reject));
      // Both races below may see the same failure; only the first one awaited reports it.
      failed.catch(() => undefined);
      const exit = Promise.race([new Promise((resolve) => w.once('exit', resolve)), failed]);
      exit.catch(() => undefined);
      exited.push(exit);
      // One thread at a time up to 'ready': a thread that must log in (its own connection) never does so
      // concurrently with another, which SoftHSM's file store behind p11-kit answered with CKR_PIN_INCORRECT.
      await Promise.race([new Promise((resolve) => w.once('message', resolve)), failed]);
    }
    const flag = new Int32Array(shared, 0, 1);
    const start = process.hrtime.bigint();
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await Promise.all(exited);
    const finished = new BigInt64Array(shared, 8, threads);
    let end = 0n;
    for (const t of finished) {
      if (t === 0n) throw new Error('a signer thread ended without finishing its signatures');
      if (t > end) end = t;
    }
    return (threads * iterations) / (Number(end - start) / 1e9);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * The same method driven from the event loop: `threads` sessions with one C_SignAsync in flight each.
 * Shows what the pkcs11js hand-off to the libuv pool costs compared with real threads.
 */
export async function harnessAsync(token: Token, key: KeyPair, threads: number, iterations: number): Promise<number> {
  const sessions = Array.from({ length: threads }, () => token.openSession(false));
  const mechanism = { mechanism: pkcs11.CKM_RSA_PKCS };
  try {
    const start = performance.now();
    await Promise.all(sessions.map(async (s) => {
      const out = Buffer.alloc(1024);
      for (let i = 0; i < iterations; i++) {
        const input = digestInfo('sha1', createHash('sha1').update(SIGNED_DATA).digest());
        token.lib.C_SignInit(s, mechanism, key.privateKey);
        await token.lib.C_SignAsync(s, input, out);
      }
    }));
    return (threads * iterations) / ((performance.now() - start) / 1000);
  } finally {
    for (const s of sessions) token.closeSession(s);
  }
}
