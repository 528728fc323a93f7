/**
 * KMIP 1.2 client over TLS (node:tls), framed by the TTLV header length.
 *
 * API (used by the suites and the benchmark helper):
 *   const client = await KmipClient.connect(conn, { timeoutMs: 10_000 });   // conn: KmipConnection
 *   client.tls                          // { version: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-SHA256', … }
 *   const { privateId, publicId } = await client.createKeyPair({ algorithm: 'RSA', length: 2048,
 *       privateName: 'k-pri', publicName: 'k-pub' });
 *   await client.activate(privateId);
 *   const sig = await client.sign(privateId, data, { hashing: 'SHA-256', padding: 'PKCS1 v1.5', algorithm: 'RSA' });
 *   const sigs = await client.signBatch(privateId, [d1, d2], params);   // one message, Unique Batch Item IDs
 *   await client.destroy(publicId);
 *   client.close();
 * Other operations: discoverVersions, query, get, getAttributes, signatureVerify, modifyAttribute,
 * addAttribute, locate, revoke, rngRetrieve; request() sends any batch and exchangeRaw() any bytes.
 * A failed batch item throws KmipError (status, reason, message). Deviations from the specification seen in
 * responses accumulate in client.deviations.
 *
 * Protocol Version: unless fixed in the options, each request uses the version Cascade picks for its first
 * operation (1.0 for key management, 1.1 for Discover Versions, 1.2 for Query, Sign and RNG Retrieve), so
 * the suite sees what Cascade sees.
 */
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KmipConnection } from '../driver.js';
import { decode, encode, frameLength, type TtlvError } from './ttlv.js';
import type { Item } from './ttlv.js';
import { E, T, operationName } from './tags.js';
import {
  attribute,
  bytes,
  child,
  children,
  cryptoParams,
  enumItem,
  int,
  nameAttribute,
  numberOf,
  parseResponse,
  protocolVersion,
  requestMessage,
  resultReasonName,
  resultStatusName,
  struct,
  text,
  textOf,
  usageMask,
  usageMaskAttribute,
} from './messages.js';
import type { CryptoParams, ParsedResponse, ProtocolVersion, RequestBatchItem, RequestOptions } from './messages.js';
import { registerSecret } from '../secrets.js';
import { UsageError } from '../errors.js';

export interface KmipClientOptions {
  /** Connect and per-request time limit (ms). */
  timeoutMs?: number;
  /** The client's own cap on a response's size; larger responses close the connection. */
  maxResponseBytes?: number;
  /** Sent as Maximum Response Size in every request header when set. */
  maximumResponseSize?: number;
  /** Fixed Protocol Version; default is Cascade's per-operation choice. */
  version?: ProtocolVersion;
  /** Send the Username/Password credential from the connection (default true when it has one). */
  sendCredential?: boolean;
}

export class KmipError extends Error {
  constructor(
    readonly operation: number,
    readonly resultStatus: number,
    readonly resultReason: number | undefined,
    readonly resultMessage: string | undefined,
  ) {
    super(`${operationName(operation)}: ${resultStatusName(resultStatus)} / ${resultReasonName(resultReason)}${resultMessage ? `: ${resultMessage}` : ''}`);
    this.name = 'KmipError';
  }
}

/** The connection broke, timed out, or the peer sent something that is not a KMIP response. */
export class KmipTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KmipTransportError';
  }
}

const OP = (name: string) => E('Operation', name);
const AUTH_FAILED = E('Result Reason', 'Authentication Not Successful');
/** How a KMIP-to-PKCS#11 bridge may pass on a rejected PIN in its Result Message. */
const PIN_REJECTED = /\bCKR_PIN_(INCORRECT|INVALID|LEN_RANGE|LOCKED|EXPIRED)\b/;

/**
 * A server the harness did not start rejected the username/password the user gave (KMIP_USERNAME,
 * KMIP_PASSWORD): bad input, not a property of the server. The run stops at the first rejection (exit 2),
 * so a wrong password is tried once and never again (a token may lock its PIN after a few attempts).
 */
function checkAuthentication(conn: KmipConnection, credentialSent: boolean, items: ParsedResponse['items']): void {
  if (!credentialSent || conn.launchedByHarness) return;
  const rejected = items.find((it) => it.resultStatus !== 0 && (it.resultReason === AUTH_FAILED || PIN_REJECTED.test(it.resultMessage ?? '')));
  if (!rejected) return;
  throw new UsageError(
    `the KMIP server at ${conn.host}:${conn.port} rejected the credentials (${resultReasonName(rejected.resultReason)}${rejected.resultMessage ? `: ${rejected.resultMessage}` : ''}); check KMIP_USERNAME and KMIP_PASSWORD`,
  );
}

const CASCADE_V10 = new Set(
  [
    'Create',
    'Create Key Pair',
    'Register',
    'Locate',
    'Get',
    'Get Attributes',
    'Get Attribute List',
    'Add Attribute',
    'Modify Attribute',
    'Delete Attribute',
    'Activate',
    'Revoke',
    'Destroy',
  ].map(OP),
);

/** The Protocol Version Cascade's client puts in the header for a request whose first item is `op`. */
export function cascadeVersionFor(op: number): ProtocolVersion {
  if (CASCADE_V10.has(op)) return { major: 1, minor: 0 };
  if (op === OP('Discover Versions')) return { major: 1, minor: 1 };
  return { major: 1, minor: 2 };
}

export interface TlsInfo {
  version: string;
  cipher: string;
  cipherStandardName?: string;
}

export interface QueryResult {
  operations: number[];
  objectTypes: number[];
  vendorIdentification?: string;
  serverInformation?: Item;
}
export interface GetResult {
  objectType?: number;
  uniqueId?: string;
  keyFormatType?: number;
  keyMaterial?: Item;
  algorithm?: number;
  length?: number;
  payload: Item;
}
export interface AttributeValue {
  name: string;
  index?: number;
  value: Item;
}

export interface KeyPairSpec {
  algorithm: 'RSA' | 'ECDSA';
  /** RSA modulus bits, or 256 for P-256. */
  length: number;
  privateName: string;
  publicName: string;
  /** Extra Common template attributes (e.g. Recommended Curve), for targets that want them. */
  extraCommon?: Item[];
}

export class KmipClient {
  readonly deviations: string[] = [];
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private closedReason: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly socket: tls.TLSSocket,
    readonly conn: KmipConnection,
    readonly opts: Required<Omit<KmipClientOptions, 'version' | 'maximumResponseSize'>> & KmipClientOptions,
    readonly tls: TlsInfo,
  ) {
    socket.on('data', (d: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.closedReason ??= 'the server closed the connection';
      this.wake();
    });
    socket.on('close', () => {
      this.closedReason ??= 'the connection closed';
      this.wake();
    });
    socket.on('error', (e) => {
      this.closedReason ??= `connection error: ${e.message}`;
      this.wake();
    });
  }

  static async connect(conn: KmipConnection, options: KmipClientOptions = {}): Promise<KmipClient> {
    const opts = { timeoutMs: 10_000, maxResponseBytes: 1 << 20, sendCredential: true, ...options };
    registerSecret(conn.password, 'the KMIP password');
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        host: conn.host,
        port: conn.port,
        ca: conn.ca ? readFileSync(conn.ca) : undefined,
        rejectUnauthorized: !conn.insecure,
        cert: conn.clientCert ? readFileSync(conn.clientCert) : undefined,
        key: conn.clientKey ? readFileSync(conn.clientKey) : undefined,
        // Certificates name the server by its loopback address or "localhost"; SNI must not be an IP.
        servername: /^[\d.:]+$/.test(conn.host) ? undefined : conn.host,
        minVersion: 'TLSv1.2',
      });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new KmipTransportError(`TLS handshake with ${conn.host}:${conn.port} did not finish within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new KmipTransportError(`cannot connect to ${conn.host}:${conn.port}: ${e.message}`));
      });
    });
    const c = socket.getCipher();
    return new KmipClient(socket, conn, opts, { version: socket.getProtocol() ?? 'unknown', cipher: c.name, cipherStandardName: c.standardName });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Read one TTLV-framed message from the stream. */
  private async readFrame(timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buffered.length >= 8) {
        const total = frameLength(this.buffered);
        if (total > this.opts.maxResponseBytes) {
          this.socket.destroy();
          throw new KmipTransportError(`response of ${total} bytes exceeds the client's limit of ${this.opts.maxResponseBytes}`);
        }
        if (this.buffered.length >= total) {
          const frame = this.buffered.subarray(0, total);
          this.buffered = this.buffered.subarray(total);
          return Buffer.from(frame);
        }
      }
      if (this.closedReason) throw new KmipTransportError(`${this.closedReason} (${this.buffered.length} bytes of a response received)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new KmipTransportError(`no complete response within ${timeoutMs} ms (${this.buffered.length} bytes received)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Send bytes as they are and read one framed response (robustness probes use this). */
  exchangeRaw(request: Uint8Array, timeoutMs = this.opts.timeoutMs): Promise<Buffer> {
    return this.serialised(async () => {
      if (this.closedReason) throw new KmipTransportError(this.closedReason);
      this.socket.write(request);
      return this.readFrame(timeoutMs);
    });
  }

  /** Send raw bytes without waiting for an answer (half-open and truncation probes). */
  writeRaw(data: Uint8Array): void {
    this.socket.write(data);
  }

  /** Whether the server has closed or broken the connection. */
  get closed(): string | null {
    return this.closedReason;
  }

  private serialised<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Send one request message with these batch items and parse the response. */
  async request(items: RequestBatchItem[], overrides: Partial<RequestOptions> = {}): Promise<ParsedResponse & { raw: Buffer }> {
    const c = this.conn;
    const opts: RequestOptions = {
      version: this.opts.version ?? cascadeVersionFor(items[0]!.operation),
      credential: this.opts.sendCredential && c.username !== undefined ? { username: c.username, password: c.password } : undefined,
      maximumResponseSize: this.opts.maximumResponseSize,
      ...overrides,
    };
    const raw = await this.exchangeRaw(encode(requestMessage(opts, items)));
    const padding: string[] = [];
    let msg: Item;
    try {
      msg = decode(raw, { lenientPadding: padding, maxBytes: this.opts.maxResponseBytes });
    } catch (err) {
      throw new KmipTransportError(`undecodable response: ${(err as TtlvError).message}`);
    }
    const parsed = parseResponse(msg, { items });
    checkAuthentication(c, opts.credential !== undefined, parsed.items);
    for (const d of [...padding, ...parsed.deviations]) if (!this.deviations.includes(d)) this.deviations.push(d);
    return { ...parsed, raw };
  }

  /** One operation, one batch item; throws KmipError unless it succeeded. Returns the response payload. */
  async call(operation: string, payload: Item[]): Promise<Item | undefined> {
    const op = OP(operation);
    const r = await this.request([{ operation: op, payload }]);
    const it = r.items[0];
    if (!it) throw new KmipTransportError(`${operation}: the response holds no Batch Item`);
    if (it.resultStatus !== 0) throw new KmipError(op, it.resultStatus, it.resultReason, it.resultMessage);
    return it.payload;
  }

  async discoverVersions(versions: ProtocolVersion[] = []): Promise<ProtocolVersion[]> {
    const p = await this.call('Discover Versions', versions.map(protocolVersion));
    return children(p, 'Protocol Version').map((v) => ({ major: numberOf(v, 'Protocol Version Major')!, minor: numberOf(v, 'Protocol Version Minor')! }));
  }

  async query(functions: string[] = ['Query Operations', 'Query Objects', 'Query Server Information']): Promise<QueryResult> {
    const p = await this.call(
      'Query',
      functions.map((f) => enumItem('Query Function', f)),
    );
    return {
      operations: children(p, 'Operation').map((o) => o.value as number),
      objectTypes: children(p, 'Object Type').map((o) => o.value as number),
      vendorIdentification: textOf(p, 'Vendor Identification'),
      serverInformation: child(p, 'Server Information'),
    };
  }

  /** Cascade's template shape (NLnetLabs/domain-kmip src/lib.rs; docs/kmip-profile.md §4): algorithm + length common; Name + usage mask per half. */
  async createKeyPair(spec: KeyPairSpec): Promise<{ privateId: string; publicId: string }> {
    const p = await this.call('Create Key Pair', [
      struct('Common Template-Attribute', [
        attribute('Cryptographic Algorithm', { type: 'Enumeration', value: E('Cryptographic Algorithm', spec.algorithm) }),
        attribute('Cryptographic Length', { type: 'Integer', value: spec.length }),
        ...(spec.extraCommon ?? []),
      ]),
      struct('Private Key Template-Attribute', [nameAttribute(spec.privateName), usageMaskAttribute(usageMask.sign)]),
      struct('Public Key Template-Attribute', [nameAttribute(spec.publicName), usageMaskAttribute(usageMask.verify)]),
    ]);
    let privateId = textOf(p, 'Private Key Unique Identifier');
    let publicId = textOf(p, 'Public Key Unique Identifier');
    if (privateId === undefined || publicId === undefined) {
      // KMIP 1.0 use case 8.1 as reproduced in places uses the generic tag for both (docs/kmip-profile.md §8).
      const ids = children(p, 'Unique Identifier').map((u) => u.value as string);
      if (ids.length === 2) {
        this.deviations.push('Create Key Pair response uses Unique Identifier (420094) instead of Private/Public Key Unique Identifier');
        [privateId, publicId] = ids as [string, string];
      } else {
        throw new KmipTransportError('Create Key Pair response lacks the key identifiers');
      }
    }
    return { privateId, publicId };
  }

  async get(id: string, keyFormatType?: string): Promise<GetResult> {
    const p = await this.call('Get', [text('Unique Identifier', id), ...(keyFormatType ? [enumItem('Key Format Type', keyFormatType)] : [])]);
    const obj =
      p?.type === 'Structure' ? p.value.find((c) => c.tag === T('Public Key') || c.tag === T('Private Key') || c.tag === T('Symmetric Key')) : undefined;
    const block = child(obj, 'Key Block');
    return {
      objectType: numberOf(p, 'Object Type'),
      uniqueId: textOf(p, 'Unique Identifier'),
      keyFormatType: numberOf(block, 'Key Format Type'),
      keyMaterial: child(child(block, 'Key Value'), 'Key Material'),
      algorithm: numberOf(block, 'Cryptographic Algorithm'),
      length: numberOf(block, 'Cryptographic Length'),
      payload: p!,
    };
  }

  async getAttributes(id: string, names: string[] = []): Promise<AttributeValue[]> {
    const p = await this.call('Get Attributes', [text('Unique Identifier', id), ...names.map((n) => text('Attribute Name', n))]);
    return children(p, 'Attribute').map((a) => ({
      name: textOf(a, 'Attribute Name') ?? '',
      index: numberOf(a, 'Attribute Index'),
      value: child(a, 'Attribute Value')!,
    }));
  }

  async activate(id: string): Promise<void> {
    await this.call('Activate', [text('Unique Identifier', id)]);
  }

  private signItem(privateId: string, data: Uint8Array, params?: CryptoParams): Item[] {
    return [text('Unique Identifier', privateId), ...(params ? [cryptoParams(params)] : []), bytes('Data', data)];
  }

  async sign(privateId: string, data: Uint8Array, params?: CryptoParams): Promise<Uint8Array> {
    const p = await this.call('Sign', this.signItem(privateId, data, params));
    const sig = child(p, 'Signature Data');
    if (sig?.type !== 'ByteString') throw new KmipTransportError('Sign response lacks Signature Data');
    return sig.value;
  }

  /** Many Sign items in one message, each with a random 16-byte Unique Batch Item ID (as Cascade does). */
  async signBatch(privateId: string, data: Uint8Array[], params?: CryptoParams): Promise<Uint8Array[]> {
    const items = data.map((d) => ({ operation: OP('Sign'), uniqueBatchItemId: randomBytes(16), payload: this.signItem(privateId, d, params) }));
    const r = await this.request(items);
    return items.map((req, i) => {
      const ids = r.items.map((it) => it.uniqueBatchItemId && Buffer.from(it.uniqueBatchItemId).equals(req.uniqueBatchItemId));
      // Match by ID; fall back to position for servers that do not echo IDs (recorded as a deviation).
      const it = r.items[ids.indexOf(true)] ?? r.items[i];
      if (!it) throw new KmipTransportError(`batched Sign: no answer for item ${i}`);
      if (it.resultStatus !== 0) throw new KmipError(OP('Sign'), it.resultStatus, it.resultReason, it.resultMessage);
      const sig = child(it.payload, 'Signature Data');
      if (sig?.type !== 'ByteString') throw new KmipTransportError(`batched Sign item ${i} lacks Signature Data`);
      return sig.value;
    });
  }

  async signatureVerify(publicId: string, data: Uint8Array, signature: Uint8Array, params?: CryptoParams): Promise<boolean> {
    const p = await this.call('Signature Verify', [
      text('Unique Identifier', publicId),
      ...(params ? [cryptoParams(params)] : []),
      bytes('Data', data),
      bytes('Signature Data', signature),
    ]);
    return numberOf(p, 'Validity Indicator') === 1;
  }

  async modifyAttribute(id: string, attr: Item): Promise<Item | undefined> {
    const p = await this.call('Modify Attribute', [text('Unique Identifier', id), attr]);
    return child(p, 'Attribute');
  }

  async addAttribute(id: string, attr: Item): Promise<Item | undefined> {
    const p = await this.call('Add Attribute', [text('Unique Identifier', id), attr]);
    return child(p, 'Attribute');
  }

  async locate(attributes: Item[], maximumItems?: number): Promise<string[]> {
    const p = await this.call('Locate', [...(maximumItems !== undefined ? [int('Maximum Items', maximumItems)] : []), ...attributes]);
    return children(p, 'Unique Identifier').map((u) => u.value as string);
  }

  async revoke(id: string, reason = 'Cessation of Operation', message?: string): Promise<void> {
    await this.call('Revoke', [
      text('Unique Identifier', id),
      struct('Revocation Reason', [enumItem('Revocation Reason Code', reason), ...(message ? [text('Revocation Message', message)] : [])]),
    ]);
  }

  async destroy(id: string): Promise<void> {
    await this.call('Destroy', [text('Unique Identifier', id)]);
  }

  async rngRetrieve(length: number): Promise<Uint8Array> {
    const p = await this.call('RNG Retrieve', [int('Data Length', length)]);
    const d = child(p, 'Data');
    if (d?.type !== 'ByteString') throw new KmipTransportError('RNG Retrieve response lacks Data');
    return d.value;
  }

  close(): void {
    this.closedReason ??= 'closed by the client';
    this.socket.end();
    this.socket.destroy();
  }
}
