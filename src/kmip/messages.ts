/**
 * KMIP 1.2 messages (§7): request/response headers, batch items, credentials and the payloads of the
 * operations the suites drive. Builders return codec Items; parseResponse turns a decoded Response Message
 * into plain fields and notes where the server deviated from the specification.
 */
import type { Item } from './ttlv.js';
import { E, ENUMS, T, operationName, tagName } from './tags.js';

// Small item constructors, by tag name.
export const struct = (tag: string, value: Item[]): Item => ({ tag: T(tag), type: 'Structure', value });
export const int = (tag: string, value: number): Item => ({ tag: T(tag), type: 'Integer', value });
export const enumItem = (tag: string, value: string | number): Item => ({
  tag: T(tag),
  type: 'Enumeration',
  value: typeof value === 'number' ? value : E(tag, value),
});
export const text = (tag: string, value: string): Item => ({ tag: T(tag), type: 'TextString', value });
export const bytes = (tag: string, value: Uint8Array): Item => ({ tag: T(tag), type: 'ByteString', value });
export const dateTime = (tag: string, seconds: bigint): Item => ({ tag: T(tag), type: 'DateTime', value: seconds });

export interface ProtocolVersion {
  major: number;
  minor: number;
}

export interface Credential {
  username: string;
  password?: string;
}

export interface RequestBatchItem {
  operation: number;
  payload: Item[];
  /** Required by the specification when a message holds more than one item. */
  uniqueBatchItemId?: Uint8Array;
}

export interface RequestOptions {
  version: ProtocolVersion;
  credential?: Credential;
  maximumResponseSize?: number;
  timeStamp?: bigint;
  batchErrorContinuation?: 'Continue' | 'Stop' | 'Undo';
}

export function protocolVersion(v: ProtocolVersion): Item {
  return struct('Protocol Version', [int('Protocol Version Major', v.major), int('Protocol Version Minor', v.minor)]);
}

export function credentialItem(c: Credential): Item {
  const value: Item[] = [text('Username', c.username)];
  if (c.password !== undefined) value.push(text('Password', c.password));
  return struct('Authentication', [struct('Credential', [enumItem('Credential Type', 'Username and Password'), struct('Credential Value', value)])]);
}

export function requestMessage(opts: RequestOptions, items: RequestBatchItem[]): Item {
  const header: Item[] = [protocolVersion(opts.version)];
  if (opts.maximumResponseSize !== undefined) header.push(int('Maximum Response Size', opts.maximumResponseSize));
  if (opts.credential) header.push(credentialItem(opts.credential));
  if (opts.batchErrorContinuation) header.push(enumItem('Batch Error Continuation Option', opts.batchErrorContinuation));
  if (opts.timeStamp !== undefined) header.push(dateTime('Time Stamp', opts.timeStamp));
  header.push(int('Batch Count', items.length));
  return struct('Request Message', [
    struct('Request Header', header),
    ...items.map((b) =>
      struct('Batch Item', [
        enumItem('Operation', b.operation),
        ...(b.uniqueBatchItemId ? [bytes('Unique Batch Item ID', b.uniqueBatchItemId)] : []),
        struct('Request Payload', b.payload),
      ]),
    ),
  ]);
}

/** A generic Attribute {Name, Value}; the value item's tag is replaced by Attribute Value. */
export function attribute(name: string, value: Omit<Item, 'tag'>, index?: number): Item {
  const v = { ...value, tag: T('Attribute Value') } as Item;
  return struct('Attribute', [text('Attribute Name', name), ...(index !== undefined ? [int('Attribute Index', index)] : []), v]);
}

export function nameAttribute(name: string): Item {
  return attribute('Name', { type: 'Structure', value: [text('Name Value', name), enumItem('Name Type', 'Uninterpreted Text String')] });
}

export const usageMask = { sign: 0x1, verify: 0x2 } as const;

export function usageMaskAttribute(mask: number): Item {
  return attribute('Cryptographic Usage Mask', { type: 'Integer', value: mask });
}

export interface CryptoParams {
  hashing?: string;
  padding?: string;
  algorithm?: string;
  digitalSignature?: string;
}

export function cryptoParams(p: CryptoParams): Item {
  const v: Item[] = [];
  if (p.padding) v.push(enumItem('Padding Method', p.padding));
  if (p.hashing) v.push(enumItem('Hashing Algorithm', p.hashing));
  if (p.digitalSignature) v.push(enumItem('Digital Signature Algorithm', p.digitalSignature));
  if (p.algorithm) v.push(enumItem('Cryptographic Algorithm', p.algorithm));
  return struct('Cryptographic Parameters', v);
}

// ---- responses ----

export interface ResponseBatchItem {
  operation?: number;
  uniqueBatchItemId?: Uint8Array;
  resultStatus: number;
  resultReason?: number;
  resultMessage?: string;
  payload?: Item;
}

export interface ParsedResponse {
  version: ProtocolVersion;
  timeStamp?: bigint;
  batchCount: number;
  items: ResponseBatchItem[];
  /** Departures from KMIP 1.2 §7 noticed while parsing (reported as findings, never fatal). */
  deviations: string[];
}

/** A response that does not have the shape of a Response Message at all. */
export class KmipProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KmipProtocolError';
  }
}

export function child(s: Item | undefined, tag: string): Item | undefined {
  if (s?.type !== 'Structure') return undefined;
  const t = T(tag);
  return s.value.find((c) => c.tag === t);
}

export function children(s: Item | undefined, tag: string): Item[] {
  if (s?.type !== 'Structure') return [];
  const t = T(tag);
  return s.value.filter((c) => c.tag === t);
}

export function textOf(s: Item | undefined, tag: string): string | undefined {
  const c = child(s, tag);
  return c?.type === 'TextString' ? c.value : undefined;
}

export function numberOf(s: Item | undefined, tag: string): number | undefined {
  const c = child(s, tag);
  return c && (c.type === 'Integer' || c.type === 'Enumeration' || c.type === 'Interval') ? c.value : undefined;
}

export function bytesOf(s: Item | undefined, tag: string): Uint8Array | undefined {
  const c = child(s, tag);
  return c?.type === 'ByteString' ? c.value : undefined;
}

export function parseResponse(msg: Item, request?: { items: RequestBatchItem[] }): ParsedResponse {
  if (msg.tag !== T('Response Message') || msg.type !== 'Structure') {
    throw new KmipProtocolError(`expected a Response Message structure, got ${tagName(msg.tag)} (${msg.type})`);
  }
  const deviations: string[] = [];
  const header = child(msg, 'Response Header');
  if (!header) throw new KmipProtocolError('Response Message without a Response Header');
  const pv = child(header, 'Protocol Version');
  const version = { major: numberOf(pv, 'Protocol Version Major') ?? -1, minor: numberOf(pv, 'Protocol Version Minor') ?? -1 };
  if (version.major < 0) deviations.push('Response Header lacks a Protocol Version');
  const ts = child(header, 'Time Stamp');
  if (!ts) deviations.push('Response Header lacks the required Time Stamp');
  const batchCount = numberOf(header, 'Batch Count') ?? -1;
  const items = children(msg, 'Batch Item').map((b, i): ResponseBatchItem => {
    const status = numberOf(b, 'Result Status');
    if (status === undefined) throw new KmipProtocolError(`Batch Item ${i} has no Result Status`);
    const reason = numberOf(b, 'Result Reason');
    if (status === 1 && reason === undefined) deviations.push(`failed Batch Item ${i} has no Result Reason`);
    if (reason !== undefined && reason > 0x15 && reason !== 0x100) deviations.push(`Result Reason 0x${reason.toString(16)} is not defined in KMIP 1.2`);
    return {
      operation: numberOf(b, 'Operation'),
      uniqueBatchItemId: bytesOf(b, 'Unique Batch Item ID'),
      resultStatus: status,
      resultReason: reason,
      resultMessage: textOf(b, 'Result Message'),
      payload: child(b, 'Response Payload'),
    };
  });
  if (batchCount !== items.length) deviations.push(`Batch Count ${batchCount} but ${items.length} Batch Items`);
  if (request) {
    items.forEach((it, i) => {
      const req = request.items[i];
      if (!req) return;
      if (it.operation === undefined) {
        deviations.push(
          `${it.resultStatus === 0 ? 'a successful' : 'an error'} Batch Item for ${operationName(req.operation)} carries no Operation (required when the request had one)`,
        );
      }
      if (req.uniqueBatchItemId && !it.uniqueBatchItemId) {
        deviations.push(`Batch Item for ${operationName(req.operation)} does not echo the Unique Batch Item ID`);
      }
    });
  }
  return { version, timeStamp: ts?.type === 'DateTime' ? ts.value : undefined, batchCount, items, deviations };
}

export const resultReasonName = (r: number | undefined) => (r === undefined ? 'no reason' : (ENUMS[T('Result Reason')]![r] ?? `reason 0x${r.toString(16)}`));
export const resultStatusName = (s: number) => ENUMS[T('Result Status')]![s] ?? `status ${s}`;
