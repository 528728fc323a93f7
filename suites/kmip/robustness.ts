/**
 * KMIP robustness: malformed and hostile requests sent to a loopback server the harness launched itself.
 * After each probe a fresh connection must answer a Query; a target that died is a failed case with the
 * evidence, and is restarted so the remaining probes still run. Bounded: each probe waits at most a few
 * seconds, and nothing here is sent to a server the harness did not start or that is not on loopback.
 */
import net from 'node:net';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../../src/suite.js';
import type { KmipConnection } from '../../src/driver.js';
import { KmipClient } from '../../src/kmip/client.js';
import { decode, encode } from '../../src/kmip/ttlv.js';
import type { Item } from '../../src/kmip/ttlv.js';
import { E, T } from '../../src/kmip/tags.js';
import {
  bytes,
  credentialItem,
  enumItem,
  int,
  parseResponse,
  protocolVersion,
  requestMessage,
  resultReasonName,
  resultStatusName,
  struct,
  text,
} from '../../src/kmip/messages.js';
import type { Credential, RequestBatchItem } from '../../src/kmip/messages.js';

const ANSWER_WAIT_MS = 2500;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
/** What each credential probe sends, as the security finding says it. */
const CREDENTIAL_PROBES: Record<string, string> = {
  'missing-credentials': 'no credential',
  'wrong-password': 'a wrong password',
  'wrong-username': 'a wrong username',
};

type Outcome = { kind: 'answer'; summary: string; success: boolean } | { kind: 'closed'; summary: string } | { kind: 'silent'; summary: string };

interface Probe {
  name: string;
  /** What is sent (bytes) or done (a function using a raw connection), built from this connection's valid request. */
  send: (kit: ProbeKit) => Promise<Outcome>;
  /** A success answer to this probe means the server accepted something the specification forbids. */
  mustReject?: boolean;
  /**
   * The probe carries credentials the target must refuse: a success answer is an authentication bypass, a `fail`
   * and a `security` finding (docs/status-model.md), not a deviation. It must be refused only where the target
   * has a username to check (conn.username).
   */
  credential?: boolean;
}

const QUERY = E('Operation', 'Query');
const queryItem = (): RequestBatchItem => ({ operation: QUERY, payload: [enumItem('Query Function', 'Query Operations')] });

function credentialOf(conn: KmipConnection): Credential | undefined {
  return conn.username !== undefined ? { username: conn.username, password: conn.password } : undefined;
}

function message(conn: KmipConnection, items: RequestBatchItem[] = [queryItem()], version = { major: 1, minor: 2 }): Buffer {
  return encode(requestMessage({ version, credential: credentialOf(conn) }, items));
}

/** A request built by hand, for shapes requestMessage() refuses to produce. */
function custom(header: Item[], batch: Item[]): Buffer {
  return encode(struct('Request Message', [struct('Request Header', header), ...batch]));
}

function describe(raw: Buffer): { summary: string; success: boolean } {
  try {
    const r = parseResponse(decode(raw, { lenientPadding: [] }));
    const parts = r.items.map((i) => (i.resultStatus === 0 ? 'Success' : `${resultStatusName(i.resultStatus)} / ${resultReasonName(i.resultReason)}`));
    return {
      summary: `answered (${raw.length} bytes): ${parts.join('; ') || 'no batch items'}`,
      success: r.items.length > 0 && r.items.every((i) => i.resultStatus === 0),
    };
  } catch (err) {
    return { summary: `answered with ${raw.length} undecodable bytes (${(err as Error).message})`, success: false };
  }
}

/** Send bytes on a fresh TLS connection and report what came back. */
async function sendBytes(conn: KmipConnection, data: Buffer, opts: { endAfter?: boolean } = {}): Promise<Outcome> {
  const c = await KmipClient.connect(conn, { timeoutMs: 5000, maxResponseBytes: 1 << 20 });
  try {
    if (opts.endAfter) {
      c.writeRaw(data);
      // Half-close is not exposed by the client; closing after a short pause has the same effect for the server.
      await new Promise((r) => setTimeout(r, 300));
      return { kind: 'closed', summary: 'sent, then closed the connection' };
    }
    const raw = await c.exchangeRaw(data, ANSWER_WAIT_MS);
    return { kind: 'answer', ...describe(raw) };
  } catch (err) {
    const msg = (err as Error).message;
    if (/no complete response/.test(msg)) return { kind: 'silent', summary: `no answer within ${ANSWER_WAIT_MS} ms` };
    return { kind: 'closed', summary: msg };
  } finally {
    c.close();
  }
}

const withLength = (b: Buffer, len: number) => {
  const x = Buffer.from(b);
  x.writeUInt32BE(len, 4);
  return x;
};

/** What the probes build their requests from: a valid request for this connection and helpers for hand-made ones. */
interface ProbeKit {
  conn: KmipConnection;
  base: Buffer;
  hdr: (extra?: Item[], version?: { major: number; minor: number }, count?: number) => Item[];
  batch: (op: number, payload: Item[], extra?: Item[]) => Item;
  qf: Item;
  nested: Item;
}

/** A probe that sends the bytes `data` builds on a fresh connection. */
const p = (name: string, data: (kit: ProbeKit) => Buffer, mustReject = true): Probe => ({ name, mustReject, send: (kit) => sendBytes(kit.conn, data(kit)) });

function probeKit(conn: KmipConnection): ProbeKit {
  const base = message(conn);
  const hdr = (extra: Item[] = [], version = { major: 1, minor: 2 }, count = 1) => {
    const cred = credentialOf(conn);
    return [protocolVersion(version), ...(cred ? [credentialItem(cred)] : []), ...extra, int('Batch Count', count)];
  };
  const batch = (op: number, payload: Item[], extra: Item[] = []) =>
    struct('Batch Item', [enumItem('Operation', op), ...extra, struct('Request Payload', payload)]);
  const qf = enumItem('Query Function', 'Query Operations');
  let nested: Item = qf;
  for (let i = 0; i < 200; i++) nested = struct('Request Payload', [nested]);
  return { conn, base, hdr, batch, qf, nested };
}

/** Lengths, types and values that break the TTLV encoding. */
function encodingProbes(): Probe[] {
  return [
    p('length-longer-than-sent', (k) => withLength(k.base, k.base.length - 8 + 64)),
    p('length-shorter-than-sent', (k) => withLength(k.base, k.base.length - 8 - 16)),
    p('structure-length-not-multiple-of-8', (k) => withLength(k.base, k.base.length - 8 - 3)),
    p('huge-declared-length', (k) => withLength(k.base.subarray(0, 16), 0xfffffff0)),
    p('integer-with-length-8', (k) => {
      const b = Buffer.from(k.base);
      b.writeUInt32BE(8, 28);
      return b;
    }),
    p('operation-as-text-string', (k) => custom(k.hdr(), [struct('Batch Item', [text('Operation', 'Query'), struct('Request Payload', [k.qf])])])),
    p('batch-count-mismatch', (k) => custom(k.hdr([], undefined, 3), [k.batch(QUERY, [k.qf])])),
    p('non-zero-padding', (k) => {
      const b = Buffer.from(k.base);
      b[39] = 0xff;
      return b;
    }),
    p('invalid-utf8-text', (k) => {
      const b = custom(k.hdr(), [
        k.batch(E('Operation', 'Locate'), [
          struct('Attribute', [text('Attribute Name', '\u0001\u0002\u0003'), { tag: T('Attribute Value'), type: 'TextString', value: 'x' }]),
        ]),
      ]);
      Buffer.from([0xff, 0xfe, 0x80]).copy(b, b.indexOf(Buffer.from([1, 2, 3])));
      return b;
    }),
    p('boolean-value-2', (k) => {
      const b = custom(k.hdr([{ tag: T('Batch Order Option'), type: 'Boolean', value: true }]), [k.batch(QUERY, [k.qf])]);
      const i = b.indexOf(Buffer.from('42001006', 'hex'));
      b[i + 15] = 2;
      return b;
    }),
    p('date-time-extended-type-0b', (k) => {
      const b = custom(k.hdr([{ tag: T('Time Stamp'), type: 'DateTime', value: BigInt(Math.floor(Date.now() / 1000)) }]), [k.batch(QUERY, [k.qf])]);
      const i = b.indexOf(Buffer.from('42009209', 'hex'));
      b[i + 3] = 0x0b;
      return b;
    }),
  ];
}

/** Well-encoded requests with hostile content: size, nesting, unknown tags and operations, versions, batches. */
function messageProbes(): Probe[] {
  return [
    p(
      'request-over-8-KiB',
      (k) =>
        message(k.conn, [
          {
            operation: E('Operation', 'Locate'),
            payload: [
              struct('Attribute', [
                text('Attribute Name', 'Name'),
                {
                  tag: T('Attribute Value'),
                  type: 'Structure',
                  value: [text('Name Value', 'x'.repeat(9000)), enumItem('Name Type', 'Uninterpreted Text String')],
                },
              ]),
            ],
          },
        ]),
      false,
    ),
    p('deep-nesting-200', (k) => custom(k.hdr(), [k.batch(QUERY, [k.nested])])),
    p('unknown-tag-in-header', (k) => custom(k.hdr([{ tag: 0x540001, type: 'TextString', value: 'vendor extension' }]), [k.batch(QUERY, [k.qf])]), false),
    p('unknown-tag-in-payload', (k) => custom(k.hdr(), [k.batch(QUERY, [k.qf, { tag: 0x42ffff, type: 'Integer', value: 7 }])]), false),
    p('unknown-operation-code-0xff', (k) => custom(k.hdr(), [k.batch(0xff, [])])),
    p('operation-code-zero', (k) => custom(k.hdr(), [k.batch(0, [])])),
    p('protocol-version-9.31', (k) => message(k.conn, [queryItem()], { major: 9, minor: 31 })),
    p('protocol-version-2.0', (k) => message(k.conn, [queryItem()], { major: 2, minor: 0 }), false),
    p('empty-request-message', () => encode(struct('Request Message', []))),
    p('response-message-as-request', (k) => {
      const b = Buffer.from(k.base);
      b.writeUIntBE(T('Response Message'), 0, 3);
      return b;
    }),
    p('random-bytes', () => Buffer.from(Array.from({ length: 96 }, (_, i) => (i * 73 + 41) & 0xff))),
    p(
      'many-batch-items-100',
      (k) =>
        message(
          k.conn,
          Array.from({ length: 100 }, () => ({ ...queryItem(), uniqueBatchItemId: Buffer.from([0, 0]) })),
        ),
      false,
    ),
    p(
      'duplicate-unique-batch-item-ids',
      (k) =>
        message(k.conn, [
          { ...queryItem(), uniqueBatchItemId: Buffer.from('aa', 'hex') },
          { ...queryItem(), uniqueBatchItemId: Buffer.from('aa', 'hex') },
        ]),
      false,
    ),
  ];
}

/** Authentication: no credential, a wrong password, a wrong username, each after a good login (credentialProbe). */
function credentialProbes(): Probe[] {
  return [
    credentialProbe('missing-credentials', () => undefined),
    credentialProbe('wrong-password', (conn) => ({ username: conn.username ?? 'hsm-harness', password: WRONG_PASSWORD })),
    credentialProbe('wrong-username', (conn) => ({ username: `${conn.username ?? 'hsm-harness'}-not-this-user`, password: conn.password })),
  ];
}

/** The connection itself: truncated, idle, not TLS, odd identifiers. */
function connectionProbes(): Probe[] {
  return [
    { name: 'truncated-then-closed', send: (k) => sendBytes(k.conn, k.base.subarray(0, 40), { endAfter: true }) },
    { name: 'header-only-then-closed', send: (k) => sendBytes(k.conn, k.base.subarray(0, 5), { endAfter: true }) },
    { name: 'half-open-idle-connection', send: (k) => halfOpen(k.conn) },
    { name: 'plaintext-on-tls-port', send: (k) => plaintext(k.conn) },
    {
      name: 'unknown-attribute-name',
      mustReject: false,
      send: ({ conn }) =>
        sendBytes(
          conn,
          message(conn, [
            {
              operation: E('Operation', 'Locate'),
              payload: [struct('Attribute', [text('Attribute Name', 'x-hsm-harness-unknown'), { tag: T('Attribute Value'), type: 'TextString', value: 'x' }])],
            },
          ]),
        ),
    },
    {
      name: 'byte-string-id-as-unique-identifier',
      send: ({ conn }) =>
        sendBytes(conn, message(conn, [{ operation: E('Operation', 'Get'), payload: [bytes('Unique Identifier', Buffer.from('01', 'hex'))] }])),
    },
  ];
}

const WRONG_PASSWORD = 'wrong-password-for-probe';

/**
 * A Discover Versions request with a credential the target must refuse (or none at all), sent on a new connection
 * while another connection holds a good login: a target that keeps one logged-in session for everyone (as a
 * KMIP-to-PKCS#11 bridge might) must still check each request's credential.
 */
function credentialProbe(name: string, credential: (conn: KmipConnection) => Credential | undefined): Probe {
  return {
    name,
    credential: true,
    async send({ conn }) {
      const data = encode(
        requestMessage({ version: { major: 1, minor: 1 }, credential: credential(conn) }, [{ operation: E('Operation', 'Discover Versions'), payload: [] }]),
      );
      const good = await KmipClient.connect(conn, { timeoutMs: 5000 });
      try {
        await good.query(['Query Operations']);
        return await sendBytes(conn, data);
      } finally {
        good.close();
      }
    },
  };
}

/** Keep a TLS connection open and silent while another client must still be served. */
async function halfOpen(conn: KmipConnection): Promise<Outcome> {
  const idle = await KmipClient.connect(conn, { timeoutMs: 5000 });
  try {
    const other = await KmipClient.connect(conn, { timeoutMs: 5000 });
    try {
      await other.query(['Query Operations']);
      return { kind: 'answer', summary: 'a second client was served while an idle connection stayed open', success: true };
    } catch (err) {
      return { kind: 'closed', summary: `second client not served while an idle connection was open: ${(err as Error).message}` };
    } finally {
      other.close();
    }
  } finally {
    idle.close();
  }
}

/** Bytes that are not TLS at all, on the TLS port. */
function plaintext(conn: KmipConnection): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ host: conn.host, port: conn.port });
    const t = setTimeout(() => {
      s.destroy();
      resolve({ kind: 'silent', summary: 'no reaction within the wait' });
    }, ANSWER_WAIT_MS);
    s.once('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.once('data', (d) => {
      clearTimeout(t);
      s.destroy();
      resolve({ kind: 'closed', summary: `replied ${d.length} bytes and closed` });
    });
    s.once('close', () => {
      clearTimeout(t);
      resolve({ kind: 'closed', summary: 'closed the connection' });
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve({ kind: 'closed', summary: 'reset the connection' });
    });
  });
}

async function alive(conn: KmipConnection): Promise<string | null> {
  try {
    const c = await KmipClient.connect(conn, { timeoutMs: 5000 });
    try {
      await c.query(['Query Operations']);
      return null;
    } finally {
      c.close();
    }
  } catch (err) {
    return (err as Error).message;
  }
}

/** Every probe, in the order they are sent. */
const PROBES: Probe[] = [...encodingProbes(), ...messageProbes(), ...credentialProbes(), ...connectionProbes()];

/** Why no probe is sent (not a loopback server the harness launched, or dead before the first probe); else the kit and each probe's outcome. */
interface RobustnessState {
  notOurs?: string;
  deadBefore?: string;
  kit?: ProbeKit;
  summary: Record<string, string>;
}

async function setup(ctx: SuiteContext): Promise<RobustnessState> {
  const conn = ctx.connections.kmip!;
  if (!conn.launchedByHarness || !LOOPBACK.test(conn.host)) {
    const why = conn.launchedByHarness ? 'is not loopback' : 'was not launched by the harness';
    return { notOurs: `robustness probes only go to loopback servers the harness launched (${conn.host} ${why})`, summary: {} };
  }
  const deadBefore = await alive(conn);
  return deadBefore ? { deadBefore, summary: {} } : { kit: probeKit(conn), summary: {} };
}

/** One probe: send it, then a fresh Query must be answered (a dead target is restarted for the remaining probes). */
async function probeCase(c: CaseHandle, s: RobustnessState, ctx: SuiteContext, probe: Probe): Promise<void> {
  const kit = s.kit!;
  const { conn } = kit;
  const outcome = await probe.send(kit);
  c.detail('outcome', outcome.kind);
  c.detail('response', outcome.summary);
  s.summary[probe.name] = outcome.summary;
  const dead = await alive(conn);
  if (dead) {
    c.detail('afterwards', dead);
    let restarted = 'no restart available';
    if (conn.restart) {
      try {
        await conn.restart();
        restarted = 'restarted';
      } catch (err) {
        restarted = `restart failed: ${(err as Error).message}`;
      }
    }
    throw new Error(`target stopped answering after this input (${outcome.summary}); fresh Query: ${dead}; ${restarted}`);
  }
  const mustReject = probe.credential ? conn.username !== undefined : probe.mustReject;
  if (mustReject && outcome.kind === 'answer' && outcome.success) {
    if (probe.credential) {
      const what = `authentication bypass: the target accepted a request with ${CREDENTIAL_PROBES[probe.name]} on a new connection after a good login (${outcome.summary})`;
      ctx.finding('security', what);
      throw new Error(`SECURITY: ${what}`);
    }
    ctx.finding('deviation', `accepted a malformed request (${probe.name}): ${outcome.summary}`);
  }
}

/** What the probes add up to: the credential note, and the section of every probe's outcome. */
function teardown(ctx: SuiteContext, s: RobustnessState): void {
  if (!s.kit) return;
  const { summary } = s;
  if (s.kit.conn.username === undefined && /Success/.test(summary['wrong-password'] ?? '') && /Success/.test(summary['missing-credentials'] ?? '')) {
    // Not a deviation for a server that authenticates by client certificate, but an operator should know.
    ctx.finding(
      'note',
      'the Username/Password credential in the request header is not checked (a wrong password and no credential both succeed): this target authenticates clients by their TLS client certificate only',
    );
  }
  ctx.report.sections['kmip-robustness'] = summary;
}

export const kmipRobustness: Suite<RobustnessState> = {
  name: 'kmip-robustness',
  title: 'KMIP robustness: malformed and hostile requests (loopback targets the harness launched)',
  needs: 'kmip',
  setup,
  cases: [
    { name: 'hostile-inputs', applies: (_ctx, s) => !!s.notOurs, run: (c, s) => c.skip(s.notOurs!) },
    {
      name: 'target-alive-before',
      applies: (_ctx, s) => !!s.deadBefore,
      run(_c, s) {
        throw new Error(`target does not answer Query before any probe: ${s.deadBefore}`);
      },
    },
    ...PROBES.map(
      (probe): SuiteCase<RobustnessState> => ({
        name: probe.name,
        timeoutMs: 60_000,
        applies: (_ctx, s) => !!s.kit,
        run: (c, s, ctx) => probeCase(c, s, ctx, probe),
      }),
    ),
  ],
  teardown,
};
