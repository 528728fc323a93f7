/**
 * KMIP Sign round trips per second against a KMIP target (PyKMIP now, Cascade's bridge when present): one
 * TLS connection, one Sign request per round trip, the way Cascade signs one RRset at a time; then the
 * aggregate rate with 1 and up to 4 connections in parallel (never more than the driver's maxConcurrency;
 * completed round trips / wall seconds). A sample of the signatures (the first, the last of the latency run
 * and of each connection) is verified with node:crypto against the public key from Get; a key whose
 * signatures do not verify publishes no figure. Keys are created for the benchmark, then revoked and
 * destroyed. Speed is reported, never asserted.
 *
 * Load goes only to a server the harness started on loopback (KmipConnection.launchedByHarness). Anything
 * else (an external KMIP_BRIDGE_ADDR, perhaps in production use) is benchmarked only when the user opts in
 * with HSM_ALLOW_EXTERNAL_LOAD=1; otherwise the suite records one skipped case and sends nothing.
 */
import { randomBytes, verify, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import { kmipBenchReport } from '../bench/report.js';
import { Bench } from 'tinybench';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../src/suite.js';
import type { KmipConnection } from '../src/driver.js';
import { KmipClient, KmipError } from '../src/kmip/client.js';
import type { CryptoParams } from '../src/kmip/messages.js';
import { benchOptions } from './bench.js';
import { SIGNED_DATA } from '../bench/signed-data.js';
import { verifySamples } from '../bench/pkcs11.js';
import { publicKeyFromGet } from '../src/kmip/publickey.js';
import type { KmipBenchSection } from '../bench/types.js';
import { Advertised } from '../src/kmip/advertised.js';

const KEYS: { algorithm: string; spec: { algorithm: 'RSA' | 'ECDSA'; length: number }; params: CryptoParams }[] = [
  { algorithm: 'RSA-2048', spec: { algorithm: 'RSA', length: 2048 }, params: { hashing: 'SHA-256', padding: 'PKCS1 v1.5', algorithm: 'RSA' } },
  { algorithm: 'ECDSA P-256', spec: { algorithm: 'ECDSA', length: 256 }, params: { hashing: 'SHA-256', algorithm: 'ECDSA' } },
];

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
export const EXTERNAL_LOAD_SKIP =
  'benchmark load goes only to KMIP servers the harness started on loopback; set HSM_ALLOW_EXTERNAL_LOAD=1 to benchmark this one';

const CONNECTIONS_LIMIT = 4;

/** RSA PKCS#1 v1.5 or ECDSA with SHA-256 over SIGNED_DATA; KMIP servers return ECDSA as DER (or raw r‖s). */
function kmipCheck(key: KeyObject, algorithm: 'RSA' | 'ECDSA'): (signature: Buffer) => boolean {
  if (algorithm === 'RSA') return (sig) => verify('sha256', SIGNED_DATA, { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig);
  return (sig) => verify('sha256', SIGNED_DATA, { key, dsaEncoding: 'der' }, sig) || verify('sha256', SIGNED_DATA, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

/**
 * c connections, each signing one request at a time until the window closes; bounded in time (the
 * window) and in count (no more than 10,000 requests in all), and only to the target under test.
 */
async function aggregateRate(conn: Parameters<typeof KmipClient.connect>[0], connections: number, windowMs: number, keyId: string, params: CryptoParams) {
  const clients = await Promise.all(Array.from({ length: connections }, () => KmipClient.connect(conn, { timeoutMs: 30_000 })));
  let completed = 0;
  const last: Buffer[] = [];
  const t0 = performance.now();
  const deadline = t0 + windowMs;
  try {
    await Promise.all(
      clients.map(async (cl, i) => {
        while (performance.now() < deadline && completed < 10_000) {
          last[i] = Buffer.from(await cl.sign(keyId, SIGNED_DATA, params));
          completed++;
        }
      }),
    );
  } finally {
    for (const cl of clients) cl.close();
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  return { point: { connections, completed, wallSeconds, opsPerSec: completed / wallSeconds }, signatures: last.filter(Boolean) };
}

/** What one key's benchmark case works with. */
interface SignBenchRun {
  client: KmipClient;
  conn: KmipConnection;
  created: string[];
  active: string[];
  section: KmipBenchSection;
  perKeyMs: number;
  connectionCounts: number[];
}

/** One key type: create and activate a key pair, time Sign round trips on one and on several connections, verify samples. */
async function signBench(c: CaseHandle, ctx: SuiteContext, run: SignBenchRun, k: (typeof KEYS)[number]): Promise<void> {
  const tag = randomBytes(6).toString('hex');
  let ids: { privateId: string; publicId: string };
  try {
    ids = await run.client.createKeyPair({ ...k.spec, privateName: `hsmh-bench-${tag}-pri`, publicName: `hsmh-bench-${tag}-pub` });
  } catch (err) {
    // A refused algorithm is the target's choice (PyKMIP has no ECDSA); the conformance suite judges it.
    if (err instanceof KmipError) c.unsupported(`the target refused to create ${k.algorithm} keys: ${err.message}`);
    throw err;
  }
  run.created.push(ids.privateId, ids.publicId);
  await run.client.activate(ids.privateId);
  run.active.push(ids.privateId);
  const first = Buffer.from(await run.client.sign(ids.privateId, SIGNED_DATA, k.params));
  const samples: Buffer[] = [first];
  let lastSig: Buffer = first;
  const bench = new Bench({ time: run.perKeyMs, iterations: 5, warmupTime: Math.min(200, run.perKeyMs / 5), warmupIterations: 2, throws: true });
  bench.add(`kmip sign ${k.algorithm}`, async () => {
    lastSig = Buffer.from(await run.client.sign(ids.privateId, SIGNED_DATA, k.params));
  });
  await bench.run();
  samples.push(lastSig);
  const r = bench.tasks[0]!.result;
  if (r.state !== 'completed') throw new Error(`benchmark ended in state ${r.state}`);
  const l = r.latency;
  const latency = { samples: l.samplesCount, mean: l.mean, p50: l.p50, p99: l.p99, min: l.min, max: l.max, sd: l.sd, rme: l.rme };
  const points = [];
  for (const n of run.connectionCounts) {
    const { point, signatures } = await aggregateRate(run.conn, n, run.perKeyMs / run.connectionCounts.length, ids.privateId, k.params);
    points.push(point);
    samples.push(...signatures);
  }
  const failed = verifySamples(samples, kmipCheck(publicKeyFromGet(await run.client.get(ids.publicId)).key, k.spec.algorithm));
  c.detail('signaturesVerified', samples.length);
  if (failed) throw new Error(`benchmark figures withheld: ${failed}`);
  run.section.sign.push({ algorithm: k.algorithm, latency, opsPerSec: 1000 / latency.mean });
  ctx.log(`kmip sign ${k.algorithm}: mean ${latency.mean.toFixed(2)} ms, ${(1000 / latency.mean).toFixed(1)} round trips/s`);
  for (const point of points) {
    (run.section.connections ??= []).push({ algorithm: k.algorithm, ...point });
    ctx.log(
      `kmip sign ${k.algorithm}, ${point.connections} connection(s): ${point.completed} round trips in ${point.wallSeconds.toFixed(2)} s` +
        ` = ${point.opsPerSec.toFixed(1)}/s`,
    );
  }
}

/**
 * What the cases share: why no load goes to the target, or why it could not be reached; else the connection the
 * cases sign on and the keys to revoke and destroy at the end.
 */
interface KmipBenchState {
  externalSkip?: string;
  connectError?: unknown;
  run?: SignBenchRun;
  /** An operation the target's Query does not list and then refuses (Activate, Sign, Get) is `unsupported`. */
  advertised?: Advertised;
}

async function setup(ctx: SuiteContext): Promise<KmipBenchState> {
  const conn = ctx.connections.kmip!;
  if (!(conn.launchedByHarness && LOOPBACK.test(conn.host)) && ctx.env.HSM_ALLOW_EXTERNAL_LOAD !== '1') {
    return {
      externalSkip: `${EXTERNAL_LOAD_SKIP} (${conn.host}:${conn.port} ${conn.launchedByHarness ? 'is not loopback' : 'was not started by the harness'})`,
    };
  }
  const opts = benchOptions(ctx.options);
  const section: KmipBenchSection = { mode: opts.compareOnly ? 'compare' : opts.quick ? 'quick' : 'full', profile: conn.profile, sign: [] };
  ctx.report.sections['bench-kmip'] = section;
  let client: KmipClient;
  try {
    client = await KmipClient.connect(conn, { timeoutMs: 30_000 });
  } catch (err) {
    section.skipped = `cannot connect: ${(err as Error).message}`;
    return { connectError: err };
  }
  const perKeyMs = perKeyMsOf(ctx);
  const connectionCounts = [...new Set([1, Math.max(1, Math.min(CONNECTIONS_LIMIT, ctx.traits.maxConcurrency))])];
  const advertised = await Advertised.of(client);
  return { run: { client, conn, created: [], active: [], section, perKeyMs, connectionCounts }, advertised };
}

/** Each key's share of the benchmark time (40 % of it for both keys). */
function perKeyMsOf(ctx: SuiteContext): number {
  return (benchOptions(ctx.options).timeSeconds * 1000 * 0.4) / KEYS.length;
}

async function teardown(ctx: SuiteContext, s: KmipBenchState): Promise<void> {
  if (!s.run) return;
  const { client, active, created } = s.run;
  // Active keys must be revoked before KMIP allows Destroy.
  for (const id of active) await client.revoke(id).catch(() => undefined);
  const left: string[] = [];
  for (const id of created) await client.destroy(id).catch(() => left.push(id));
  if (left.length) ctx.finding('note', `bench-kmip could not destroy ${left.length} object(s): ${left.join(', ')}`);
  client.close();
}

export const benchKmipSuite: Suite<KmipBenchState> = {
  name: 'bench-kmip',
  report: kmipBenchReport,
  title: 'KMIP Sign round trips',
  needs: 'kmip',
  setup,
  cases: [
    { name: 'load', applies: (_ctx, s) => !!s.externalSkip, run: (c, s) => c.skip(s.externalSkip!) },
    {
      name: 'connect',
      applies: (_ctx, s) => s.connectError !== undefined,
      run(_c, s) {
        throw s.connectError;
      },
    },
    ...KEYS.map(
      (k): SuiteCase<KmipBenchState> => ({
        name: `sign-${k.spec.algorithm.toLowerCase()}-${k.spec.length}`,
        timeoutMs: (ctx) => ctx.limits.caseMs + perKeyMsOf(ctx) * 2,
        applies: (_ctx, s) => !!s.run,
        run: (c, s, ctx) => s.advertised!.guard((h) => signBench(h, ctx, s.run!, k))(c),
      }),
    ),
  ],
  teardown,
};
