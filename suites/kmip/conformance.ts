/**
 * KMIP conformance: the operations Cascade uses, in Cascade's order (docs/kmip-profile.md §4), then the KMIP 1.2
 * baseline operations. Signatures are verified locally with node:crypto; public keys become DNSKEYs with
 * src/dnssec. What a target is known not to do lives in drivers/<id>.expect.json; departures from the
 * specification become findings; the KMIP section of the report holds TLS, server and per-operation facts.
 */
import { randomBytes, verify, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Suite, SuiteCase, SuiteContext, CaseHandle } from '../../src/suite.js';
import type { KmipConnection } from '../../src/driver.js';
import { KmipClient, KmipError } from '../../src/kmip/client.js';
import { publicKeyFromGet } from '../../src/kmip/publickey.js';
import { E, ENUMS, T, operationName } from '../../src/kmip/tags.js';
import { attribute, nameAttribute } from '../../src/kmip/messages.js';
import type { CryptoParams } from '../../src/kmip/messages.js';
import { dnskeyRdata, dnskeyText, keyTag, FLAGS_ZSK } from '../../src/dnssec/dnskey.js';
import type { DnssecAlgorithm } from '../../src/dnssec/dnskey.js';
import { kmipReport, type KmipSection } from './report.js';
import { Advertised, unlessAdvertised } from '../../src/kmip/advertised.js';

interface KeyUnderTest {
  label: string;
  algorithm: 'RSA' | 'ECDSA';
  length: number;
  dnssec: DnssecAlgorithm;
  params: CryptoParams;
  ids?: { privateId: string; publicId: string };
  names?: { privateName: string; publicName: string };
  publicKey?: KeyObject;
  activated?: boolean;
  reason?: string;
}

/** Per-operation outcome for the report's support table. */
type OpOutcome = 'works' | `fails: ${string}` | 'not tried';

/** What the cases share: the connection, the keys of the Cascade chain, what each operation did, the report section. */
interface KmipState {
  client?: KmipClient;
  connectError?: unknown;
  ops: Map<string, OpOutcome>;
  section: KmipSection;
  findings: Set<string>;
  advertised?: number[];
  keys: KeyUnderTest[];
}

/** Run one operation for the support table: outcome recorded (the first success stays), errors rethrown. */
async function runOp<R>(s: KmipState, op: string, fn: () => Promise<R>): Promise<R> {
  const note = (outcome: OpOutcome) => {
    if (s.ops.get(op) !== 'works') s.ops.set(op, outcome);
  };
  try {
    const r = await fn();
    note('works');
    return r;
  } catch (err) {
    note(`fails: ${err instanceof KmipError ? err.message.replace(/^[^:]+: /, '') : (err as Error).message}`);
    throw err;
  }
}

function deviation(s: KmipState, ctx: SuiteContext, text: string): void {
  if (s.findings.has(text)) return;
  s.findings.add(text);
  ctx.finding('deviation', text);
}

/** A missing precondition (an earlier case of the chain did not succeed) is a skip, not the target's answer. */
function need(k: KeyUnderTest, c: CaseHandle, what: keyof KeyUnderTest): void {
  if (!k[what]) c.skip(`${k.label}: ${k.reason ?? `no ${String(what)}`}`);
}

async function tlsCase(c: CaseHandle, s: KmipState, ctx: SuiteContext): Promise<void> {
  const client = s.client!;
  c.detail('version', client.tls.version);
  c.detail('cipher', client.tls.cipher);
  const tls13 = await supportsTls13(ctx.connections.kmip!);
  c.detail('tls13', tls13);
  s.section.tls = { ...client.tls, tls13Supported: tls13 };
  ctx.report.info.kmipTls = `${client.tls.version} ${client.tls.cipher}`;
  ctx.capability('kmip:tls1.3', tls13);
  if (!tls13) ctx.finding('note', `TLS 1.3 not offered (negotiated ${client.tls.version}); Cascade requires TLS 1.3 to talk to a KMIP server`);
}

async function queryCase(c: CaseHandle, s: KmipState, ctx: SuiteContext): Promise<void> {
  const q = await runOp(s, 'Query', () => s.client!.query());
  s.advertised = q.operations;
  c.detail('operations', q.operations.length);
  c.detail('vendor', q.vendorIdentification ?? null);
  s.section.server = {
    vendorIdentification: q.vendorIdentification ?? null,
    advertisedOperations: q.operations.map(operationName),
    advertisedObjectTypes: q.objectTypes.map((o) => ENUMS[T('Object Type')]![o] ?? o),
  };
  if (q.vendorIdentification) ctx.report.info.kmipVendor = q.vendorIdentification;
  if (q.operations.length === 0) throw new Error('Query Operations listed no operations');
}

async function discoverVersionsCase(c: CaseHandle, s: KmipState): Promise<void> {
  const all = await runOp(s, 'Discover Versions', () => s.client!.discoverVersions());
  const list = all.map((v) => `${v.major}.${v.minor}`);
  c.detail('versions', list);
  s.section.versions = list;
  if (!list.includes('1.2')) throw new Error(`KMIP 1.2 not among the offered versions (${list.join(', ') || 'none'})`);
  const only12 = await s.client!.discoverVersions([{ major: 1, minor: 2 }]);
  if (only12.length !== 1 || only12[0]!.minor !== 2) throw new Error('Discover Versions with {1.2} did not answer exactly {1.2}');
}

async function createKeyPairCase(c: CaseHandle, s: KmipState, k: KeyUnderTest): Promise<void> {
  const tag = randomBytes(6).toString('hex');
  k.names = { privateName: `hsmh-${tag}-pri`, publicName: `hsmh-${tag}-pub` };
  try {
    k.ids = await runOp(s, 'Create Key Pair', () => s.client!.createKeyPair({ algorithm: k.algorithm, length: k.length, ...k.names! }));
  } catch (err) {
    k.reason = `Create Key Pair failed: ${(err as Error).message}`;
    throw err;
  }
  c.detail('privateId', k.ids.privateId);
  c.detail('publicId', k.ids.publicId);
  if (k.ids.privateId === k.ids.publicId) throw new Error('private and public halves share one Unique Identifier');
}

async function getPublicKeyCase(c: CaseHandle, s: KmipState, ctx: SuiteContext, k: KeyUnderTest): Promise<void> {
  need(k, c, 'ids');
  const g = await runOp(s, 'Get', () => s.client!.get(k.ids!.publicId));
  const ex = publicKeyFromGet(g);
  for (const d of ex.deviations) deviation(s, ctx, d);
  c.detail('keyFormat', ex.format);
  const jwk = ex.key.export({ format: 'jwk' });
  if (k.algorithm === 'RSA') {
    const bits = Buffer.from(jwk.n!, 'base64url').length * 8;
    if (jwk.kty !== 'RSA' || bits !== k.length) throw new Error(`expected an RSA-${k.length} key, got ${jwk.kty} with ${bits}-bit modulus`);
  } else if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    throw new Error(`expected a P-256 key, got ${jwk.kty} ${jwk.crv ?? ''}`);
  }
  const rdata = dnskeyRdata(k.dnssec, ex.key, FLAGS_ZSK);
  c.detail('dnskey', `${dnskeyText(rdata).slice(0, 40)}…`);
  c.detail('keyTag', keyTag(rdata));
  k.publicKey = ex.key;
}

async function signBatchedCase(c: CaseHandle, s: KmipState, k: KeyUnderTest): Promise<void> {
  need(k, c, 'publicKey');
  need(k, c, 'activated');
  // RRSIG-sized signing inputs; the server hashes with SHA-256 itself.
  const inputs = [0, 1, 2, 3].map(() => randomBytes(120 + Math.floor(Math.random() * 80)));
  const sigs = await runOp(s, 'Sign', () => s.client!.signBatch(k.ids!.privateId, inputs, k.params));
  c.detail('signatures', sigs.length);
  c.detail('signatureBytes', sigs[0]!.length);
  const key = k.algorithm === 'RSA' ? k.publicKey! : { key: k.publicKey!, dsaEncoding: 'der' as const };
  sigs.forEach((sig, i) => {
    if (!verify('sha256', inputs[i]!, key, sig))
      throw new Error(`signature ${i} of the batch does not verify with node:crypto (${k.algorithm === 'RSA' ? 'RSA PKCS#1 v1.5' : 'ECDSA DER'}, SHA-256)`);
  });
  // A tampered input must not verify: proves the check is not vacuous.
  const bad = Buffer.from(inputs[0]!);
  bad[0]! ^= 1;
  if (verify('sha256', bad, key, sigs[0]!)) throw new Error('a signature verified over altered data');
}

async function modifyNameCase(c: CaseHandle, s: KmipState, ctx: SuiteContext, k: KeyUnderTest): Promise<void> {
  need(k, c, 'ids');
  for (const [id, suffix] of [
    [k.ids!.publicId, 'pub'],
    [k.ids!.privateId, 'pri'],
  ] as const) {
    const name = `hsmh-renamed-${randomBytes(4).toString('hex')}-${suffix}`;
    const echoed = await runOp(s, 'Modify Attribute', () => s.client!.modifyAttribute(id, nameAttribute(name)));
    if (!echoed) deviation(s, ctx, 'Modify Attribute response does not echo the Attribute');
    if (suffix === 'pub') k.names!.publicName = name;
    else k.names!.privateName = name;
  }
}

async function locateCase(c: CaseHandle, s: KmipState): Promise<void> {
  const rsa = s.keys[0]!;
  need(rsa, c, 'ids');
  const found = await runOp(s, 'Locate', () => s.client!.locate([nameAttribute(rsa.names!.publicName)]));
  c.detail('found', found.length);
  if (!found.includes(rsa.ids!.publicId))
    throw new Error(`Locate by Name did not return the public key ${rsa.ids!.publicId} (got ${found.join(', ') || 'nothing'})`);
}

async function getAttributesCase(c: CaseHandle, s: KmipState): Promise<void> {
  const rsa = s.keys[0]!;
  need(rsa, c, 'ids');
  const attrs = await runOp(s, 'Get Attributes', () =>
    s.client!.getAttributes(rsa.ids!.publicId, ['Cryptographic Algorithm', 'Cryptographic Length', 'State']),
  );
  c.detail(
    'attributes',
    attrs.map((a) => a.name),
  );
  const get = (n: string) => attrs.find((a) => a.name === n)?.value.value;
  if (get('Cryptographic Algorithm') !== E('Cryptographic Algorithm', 'RSA')) throw new Error('Cryptographic Algorithm is not RSA');
  if (get('Cryptographic Length') !== 2048) throw new Error(`Cryptographic Length is ${String(get('Cryptographic Length'))}, expected 2048`);
}

async function signatureVerifyCase(c: CaseHandle, s: KmipState): Promise<void> {
  const rsa = s.keys[0]!;
  const client = s.client!;
  need(rsa, c, 'activated');
  // Only sent when advertised: some servers abort on operations they do not implement (docs/kmip-profile.md §3, §5).
  if (!new Advertised(s.advertised).lists('Signature Verify')) c.unsupported('Signature Verify is not advertised by Query');
  // Some servers (PyKMIP) want the verifying public key Active too; Cascade never activates it.
  await client.activate(rsa.ids!.publicId).catch((err) => c.detail('activatePublicKey', (err as Error).message));
  const data = randomBytes(64);
  const sig = await client.sign(rsa.ids!.privateId, data, rsa.params);
  if (!(await runOp(s, 'Signature Verify', () => client.signatureVerify(rsa.ids!.publicId, data, sig, rsa.params))))
    throw new Error('a valid signature was reported invalid');
  const bad = Buffer.from(sig);
  bad[bad.length - 1]! ^= 1;
  if (await client.signatureVerify(rsa.ids!.publicId, data, bad, rsa.params)) throw new Error('an altered signature was reported valid');
}

async function rngRetrieveCase(c: CaseHandle, s: KmipState): Promise<void> {
  const a = await runOp(s, 'RNG Retrieve', () => s.client!.rngRetrieve(32));
  const b = await s.client!.rngRetrieve(32);
  c.detail('bytes', a.length);
  if (a.length !== 32) throw new Error(`asked for 32 bytes, got ${a.length}`);
  if (Buffer.from(a).equals(Buffer.from(b))) throw new Error('two RNG Retrieve calls returned the same bytes');
}

async function destroyCase(c: CaseHandle, s: KmipState, ctx: SuiteContext): Promise<void> {
  const ids = s.keys.flatMap((k) => (k.ids ? [k.ids.privateId, k.ids.publicId] : []));
  if (!ids.length) c.skip('no keys were created');
  const { left, answer } = await destroyAll(s.client!, ids, (op, fn) => runOp(s, op, fn));
  c.detail('destroyed', ids.length - left.length);
  if (left.length) {
    ctx.finding('note', `${left.length} key object(s) created by the suite remain on the target: ${left.join(', ')}`);
    new Advertised(s.advertised).refused(c, 'Destroy', answer ?? 'no answer');
    throw new Error(`could not destroy ${left.join(', ')}${answer ? ` (${answer})` : ''}`);
  }
  // A destroyed key must be gone.
  try {
    await s.client!.get(ids[1]!);
    throw new Error(`Get of destroyed key ${ids[1]} still succeeds`);
  } catch (err) {
    if (!(err instanceof KmipError)) throw err;
    c.detail('getAfterDestroy', ENUMS[T('Result Reason')]![err.resultReason ?? 0] ?? err.resultReason);
  }
}

const CHAIN = ['create-key-pair', 'get-public-key', 'activate', 'sign-batched'];
const PROFILE_CASES = ['cascade/query', 'cascade/discover-versions'];

/** Cascade-profile capabilities from the chain's statuses; only when the whole chain ran (not under a narrow --case). */
function recordCapabilities(ctx: SuiteContext): void {
  const ids = [...PROFILE_CASES, ...CHAIN.flatMap((step) => ['rsa-2048', 'ecdsa-p256'].map((l) => `cascade/${step}-${l}`))];
  if (ids.some((id) => status(ctx, id) === undefined)) return;
  const chainOk = (label: string) => CHAIN.every((step) => status(ctx, `cascade/${step}-${label}`) === 'pass');
  ctx.capability('kmip:cascade-profile', PROFILE_CASES.every((n) => status(ctx, n) === 'pass') && (chainOk('rsa-2048') || chainOk('ecdsa-p256')));
  ctx.capability('kmip:rsa-2048', chainOk('rsa-2048'));
  ctx.capability('kmip:ecdsa-p256', chainOk('ecdsa-p256'));
}

const TABLE_OPERATIONS = [
  'Discover Versions',
  'Query',
  'Create Key Pair',
  'Get',
  'Activate',
  'Sign',
  'Modify Attribute',
  'Locate',
  'Get Attributes',
  'Add Attribute',
  'Signature Verify',
  'RNG Retrieve',
  'Revoke',
  'Destroy',
];

/** The report's per-operation table: advertised by Query, and what the cases observed. */
function writeOperations(s: KmipState, ctx: SuiteContext): void {
  for (const d of s.client!.deviations) deviation(s, ctx, d);
  const table = Object.fromEntries(
    TABLE_OPERATIONS.map((op) => [
      op,
      { advertised: s.advertised ? s.advertised.includes(E('Operation', op)) : null, observed: s.ops.get(op) ?? ('not tried' as const) },
    ]),
  );
  s.section.operations = table;
  for (const [op, row] of Object.entries(table)) {
    if (row.advertised === false && row.observed === 'works') ctx.finding('unadvertised', `${op} works but Query Operations does not list it`);
  }
  const byOutcome = (pred: (o: string) => boolean) =>
    Object.entries(table)
      .filter(([, r]) => pred(r.observed))
      .map(([op]) => op)
      .join(', ') || 'none';
  ctx.report.info.kmipOperationsWorking = byOutcome((o) => o === 'works');
  ctx.report.info.kmipOperationsFailing = byOutcome((o) => o.startsWith('fails'));
  s.section.deviations = [...s.findings];
}

type KmipCase = SuiteCase<KmipState>;
const connected = (_ctx: SuiteContext, s: KmipState) => s.client !== undefined;
const KEYS = (): KeyUnderTest[] => [
  { label: 'rsa-2048', algorithm: 'RSA', length: 2048, dnssec: 8, params: { hashing: 'SHA-256', padding: 'PKCS1 v1.5', algorithm: 'RSA' } },
  { label: 'ecdsa-p256', algorithm: 'ECDSA', length: 256, dnssec: 13, params: { hashing: 'SHA-256', algorithm: 'ECDSA' } },
];
/** One case per key of the chain (index 0: RSA, 1: ECDSA), in Cascade's order: all keys of a step, then the next step. */
const perKey = (step: string, run: (c: CaseHandle, s: KmipState, ctx: SuiteContext, k: KeyUnderTest) => Promise<void>): KmipCase[] =>
  KEYS().map((k, i) => ({ name: `cascade/${step}-${k.label}`, applies: connected, run: (c, s, ctx) => run(c, s, ctx, s.keys[i]!) }));

export const kmipConformance: Suite<KmipState> = {
  name: 'kmip',
  report: kmipReport,
  title: 'KMIP 1.2: Cascade profile and baseline operations',
  needs: 'kmip',
  async setup(ctx) {
    const conn = ctx.connections.kmip!;
    const s: KmipState = { ops: new Map(), section: { profile: conn.profile, address: `${conn.host}:${conn.port}` }, findings: new Set(), keys: KEYS() };
    ctx.report.sections.kmip = s.section;
    try {
      s.client = await KmipClient.connect(conn);
    } catch (err) {
      s.connectError = err;
    }
    return s;
  },
  // An operation the target's Query does not list and then refuses is `unsupported`, in every case (src/kmip/advertised.ts).
  cases: unlessAdvertised(
    (s) => s.advertised,
    [
      {
        name: 'cascade/connect',
        applies: (_ctx, s) => s.client === undefined,
        run: (_c, s) => {
          throw s.connectError;
        },
      },
      { name: 'cascade/tls', applies: connected, run: tlsCase },
      { name: 'cascade/query', applies: connected, run: queryCase },
      { name: 'cascade/discover-versions', applies: connected, run: (c, s) => discoverVersionsCase(c, s) },
      ...perKey('create-key-pair', (c, s, _ctx, k) => createKeyPairCase(c, s, k)),
      ...perKey('get-public-key', getPublicKeyCase),
      ...perKey('activate', async (c, s, _ctx, k) => {
        need(k, c, 'ids');
        await runOp(s, 'Activate', () => s.client!.activate(k.ids!.privateId));
        k.activated = true;
      }),
      ...perKey('sign-batched', (c, s, _ctx, k) => signBatchedCase(c, s, k)),
      ...perKey('modify-attribute-name', modifyNameCase),
      { name: 'baseline/locate', applies: connected, run: (c, s) => locateCase(c, s) },
      { name: 'baseline/get-attributes', applies: connected, run: (c, s) => getAttributesCase(c, s) },
      {
        name: 'baseline/add-attribute',
        applies: connected,
        async run(c, s) {
          const rsa = s.keys[0]!;
          need(rsa, c, 'ids');
          await runOp(s, 'Add Attribute', () =>
            s.client!.addAttribute(rsa.ids!.publicId, attribute('Contact Information', { type: 'TextString', value: 'hsm-harness' })),
          );
        },
      },
      { name: 'baseline/signature-verify', applies: connected, run: (c, s) => signatureVerifyCase(c, s) },
      { name: 'baseline/rng-retrieve', applies: connected, run: (c, s) => rngRetrieveCase(c, s) },
      {
        name: 'baseline/revoke',
        applies: connected,
        async run(c, s) {
          const active = s.keys.filter((k) => k.activated);
          if (!active.length) c.skip('no active key to revoke');
          for (const k of active) await runOp(s, 'Revoke', () => s.client!.revoke(k.ids!.privateId, 'Cessation of Operation'));
        },
      },
      { name: 'baseline/destroy', applies: connected, run: destroyCase },
    ],
  ),
  teardown(ctx, s) {
    if (!s.client) return;
    recordCapabilities(ctx);
    writeOperations(s, ctx);
    s.client.close();
  },
};

function status(ctx: SuiteContext, name: string): string | undefined {
  return ctx.report.cases.find((c) => c.suite === ctx.suite && c.case === name)?.status;
}

/** Destroy every id; an active key is revoked first (KMIP forbids destroying Active objects). */
async function destroyAll(
  client: KmipClient,
  ids: string[],
  run: <R>(op: string, fn: () => Promise<R>) => Promise<R>,
): Promise<{ left: string[]; answer?: string }> {
  const left: string[] = [];
  let answer: string | undefined;
  for (const id of ids) {
    try {
      await run('Destroy', () => client.destroy(id));
    } catch (err) {
      answer = (err as Error).message;
      try {
        await client.revoke(id, 'Cessation of Operation');
        await client.destroy(id);
        continue;
      } catch {
        /* still there */
      }
      left.push(id);
    }
  }
  return { left, answer };
}

/** Whether the target completes a TLS 1.3 handshake (Cascade insists on 1.3). */
function supportsTls13(conn: KmipConnection): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: conn.host,
      port: conn.port,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: !conn.insecure,
      ca: conn.ca ? readFileSync(conn.ca) : undefined,
      cert: conn.clientCert ? readFileSync(conn.clientCert) : undefined,
      key: conn.clientKey ? readFileSync(conn.clientKey) : undefined,
      servername: /^[\d.:]+$/.test(conn.host) ? undefined : conn.host,
    });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 5000);
    s.once('secureConnect', () => done(s.getProtocol() === 'TLSv1.3'));
    s.once('error', () => done(false));
  });
}
