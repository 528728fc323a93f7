/**
 * KMIP TTLV codec (KMIP 1.2 §9.1): the ten item types, 8-byte alignment, and a strict decoder whose errors
 * carry the byte offset and the tag path, so a report can say exactly where a server's message went wrong.
 *
 * Values: Integer/Enumeration/Interval are numbers, Long Integer and Big Integer are bigints, Date-Time is a
 * bigint of POSIX seconds, Byte String is a Uint8Array.
 */
import { tagName } from './tags.js';

export type Item =
  | { tag: number; type: 'Structure'; value: Item[] }
  | { tag: number; type: 'Integer'; value: number }
  | { tag: number; type: 'LongInteger'; value: bigint }
  | { tag: number; type: 'BigInteger'; value: bigint }
  | { tag: number; type: 'Enumeration'; value: number }
  | { tag: number; type: 'Boolean'; value: boolean }
  | { tag: number; type: 'TextString'; value: string }
  | { tag: number; type: 'ByteString'; value: Uint8Array }
  | { tag: number; type: 'DateTime'; value: bigint }
  | { tag: number; type: 'Interval'; value: number };

export type ItemType = Item['type'];

export const TYPE_CODES: Record<ItemType, number> = {
  Structure: 0x01,
  Integer: 0x02,
  LongInteger: 0x03,
  BigInteger: 0x04,
  Enumeration: 0x05,
  Boolean: 0x06,
  TextString: 0x07,
  ByteString: 0x08,
  DateTime: 0x09,
  Interval: 0x0a,
};
const TYPE_BY_CODE = new Map<number, ItemType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as ItemType]));

/** The length the specification fixes for each fixed-size type. */
const FIXED_LENGTH: Partial<Record<ItemType, number>> = {
  Integer: 4,
  LongInteger: 8,
  Enumeration: 4,
  Boolean: 8,
  DateTime: 8,
  Interval: 4,
};

/** The codec's one error type: what was wrong, at which byte, inside which tags. */
export class TtlvError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
    readonly path: string[],
  ) {
    super(`TTLV: ${reason} at byte ${offset}${path.length ? ` (${path.join(' / ')})` : ''}`);
    this.name = 'TtlvError';
  }
}

export interface DecodeOptions {
  /** Nesting limit; deeper structures are rejected (a hostile peer could otherwise exhaust the stack). */
  maxDepth?: number;
  /** Size limit of the whole message in bytes (default DEFAULT_MAX_MESSAGE_BYTES). */
  maxBytes?: number;
  /**
   * Accept non-zero padding and report it here instead of failing. Used to keep talking to a server that
   * pads sloppily while recording the deviation.
   */
  lenientPadding?: string[];
}

export const DEFAULT_MAX_DEPTH = 32;
/**
 * 1 MiB: far above any message a DNSSEC signer exchanges (a batched Sign of a large zone is tens of KiB),
 * and the KMIP client's default response limit. Decoding and encoding are linear in the size, so the limit
 * bounds time and memory too.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;

const pad8 = (n: number) => (8 - (n % 8)) % 8;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode exactly one item that must span the whole buffer. */
export function decode(buf: Uint8Array, opts: DecodeOptions = {}): Item {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const path: string[] = [];
  if (buf.length > maxBytes) throw new TtlvError(`message of ${buf.length} bytes exceeds the limit of ${maxBytes} bytes`, maxBytes, path);

  function item(off: number, end: number, depth: number): { item: Item; next: number } {
    if (end - off < 8) throw new TtlvError(`truncated item header (${end - off} of 8 bytes)`, off, path);
    const tag = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
    const code = buf[off + 3]!;
    const len = view.getUint32(off + 4);
    path.push(tagName(tag));
    const type = TYPE_BY_CODE.get(code);
    if (!type) throw new TtlvError(`unknown item type 0x${code.toString(16).padStart(2, '0')}`, off + 3, path);
    const fixed = FIXED_LENGTH[type];
    if (fixed !== undefined && len !== fixed) throw new TtlvError(`${type} with length ${len} (must be ${fixed})`, off + 4, path);
    if (type === 'BigInteger' && (len === 0 || len % 8 !== 0))
      throw new TtlvError(`BigInteger with length ${len} (must be a non-zero multiple of 8)`, off + 4, path);
    if (type === 'Structure' && len % 8 !== 0) throw new TtlvError(`Structure with length ${len} (must be a multiple of 8)`, off + 4, path);
    const v = off + 8;
    const padded = len + pad8(len);
    if (padded > end - v)
      throw new TtlvError(`value of ${len} bytes (${padded} with padding) overruns its container by ${padded - (end - v)} bytes`, off + 4, path);
    let out: Item;
    switch (type) {
      case 'Structure': {
        if (depth >= maxDepth) throw new TtlvError(`nesting deeper than ${maxDepth}`, off, path);
        const children: Item[] = [];
        let p = v;
        while (p < v + len) {
          const r = item(p, v + len, depth + 1);
          children.push(r.item);
          p = r.next;
        }
        out = { tag, type, value: children };
        break;
      }
      case 'Integer':
        out = { tag, type, value: view.getInt32(v) };
        break;
      case 'Enumeration':
        out = { tag, type, value: view.getUint32(v) };
        break;
      case 'Interval':
        out = { tag, type, value: view.getUint32(v) };
        break;
      case 'LongInteger':
        out = { tag, type, value: view.getBigInt64(v) };
        break;
      case 'DateTime':
        out = { tag, type, value: view.getBigInt64(v) };
        break;
      case 'Boolean': {
        const b = view.getBigUint64(v);
        if (b > 1n) throw new TtlvError(`Boolean value ${b} (must be 0 or 1)`, v, path);
        out = { tag, type, value: b === 1n };
        break;
      }
      case 'BigInteger':
        out = { tag, type, value: bigFromBytes(buf.subarray(v, v + len)) };
        break;
      case 'TextString': {
        let s: string;
        try {
          s = utf8.decode(buf.subarray(v, v + len));
        } catch {
          throw new TtlvError('Text String is not valid UTF-8', v, path);
        }
        out = { tag, type, value: s };
        break;
      }
      case 'ByteString':
        out = { tag, type, value: buf.slice(v, v + len) };
        break;
    }
    for (let i = v + len; i < v + padded; i++) {
      if (buf[i] !== 0) {
        const what = `non-zero padding byte 0x${buf[i]!.toString(16).padStart(2, '0')}`;
        if (!opts.lenientPadding) throw new TtlvError(what, i, path);
        opts.lenientPadding.push(new TtlvError(what, i, path).message);
        break;
      }
    }
    path.pop();
    return { item: out, next: v + padded };
  }

  const r = item(0, buf.length, 0);
  if (r.next !== buf.length) throw new TtlvError(`${buf.length - r.next} trailing bytes after the top-level item`, r.next, []);
  return r.item;
}

/**
 * The encoder's own nesting limit: deeper than the decoder accepts, because the robustness suite builds
 * hostile messages (200 levels) on purpose, but bounded so that encoding never exhausts the stack.
 */
export const ENCODE_MAX_DEPTH = 1000;

export interface EncodeOptions {
  /** Nesting limit (default ENCODE_MAX_DEPTH). */
  maxDepth?: number;
  /** Size limit of the encoded message in bytes (default DEFAULT_MAX_MESSAGE_BYTES). */
  maxBytes?: number;
}

/** Encode one item (and its children): sizes first, then one buffer written in place. Linear in the size. */
export function encode(item: Item, opts: EncodeOptions = {}): Buffer {
  checkDepth(item, opts.maxDepth ?? ENCODE_MAX_DEPTH);
  const size = encodedSize(item);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (size > maxBytes) throw new TtlvError(`encoded message of ${size} bytes would exceed the limit of ${maxBytes} bytes`, maxBytes, []);
  const buf = Buffer.alloc(size);
  write(item, buf, 0);
  return buf;
}

/** Reject trees nested deeper than the decoder accepts, without recursion (a deep tree is the attack). */
function checkDepth(root: Item, maxDepth: number): void {
  const stack: [Item, number][] = [[root, 0]];
  while (stack.length) {
    const [it, depth] = stack.pop()!;
    if (it.type !== 'Structure') continue;
    if (depth >= maxDepth) throw new TtlvError(`nesting deeper than ${maxDepth}`, 0, [tagName(it.tag)]);
    for (const c of it.value) stack.push([c, depth + 1]);
  }
}

/** Value length as the Length field states it (padding excluded). */
function valueLength(item: Item): number {
  switch (item.type) {
    case 'Structure': {
      let n = 0;
      for (const c of item.value) n += encodedSize(c);
      return n;
    }
    case 'Integer':
    case 'Enumeration':
    case 'Interval':
      return 4;
    case 'LongInteger':
    case 'DateTime':
    case 'Boolean':
      return 8;
    case 'BigInteger':
      return bigToBytes(item.value).length;
    case 'TextString':
      return Buffer.byteLength(item.value, 'utf8');
    case 'ByteString':
      return item.value.length;
  }
}

function encodedSize(item: Item): number {
  const len = valueLength(item);
  return 8 + len + pad8(len);
}

/** Write item at off into a zero-filled buffer (padding stays zero); returns the offset after it. */
function write(item: Item, buf: Buffer, off: number): number {
  buf.writeUIntBE(item.tag, off, 3);
  buf[off + 3] = TYPE_CODES[item.type];
  const v = off + 8;
  let len: number;
  switch (item.type) {
    case 'Structure': {
      let p = v;
      for (const c of item.value) p = write(c, buf, p);
      len = p - v;
      break;
    }
    case 'Integer':
      buf.writeInt32BE(item.value, v);
      len = 4;
      break;
    case 'Enumeration':
    case 'Interval':
      buf.writeUInt32BE(item.value, v);
      len = 4;
      break;
    case 'LongInteger':
    case 'DateTime':
      buf.writeBigInt64BE(item.value, v);
      len = 8;
      break;
    case 'Boolean':
      buf.writeBigUInt64BE(item.value ? 1n : 0n, v);
      len = 8;
      break;
    case 'BigInteger': {
      const b = bigToBytes(item.value);
      b.copy(buf, v);
      len = b.length;
      break;
    }
    case 'TextString':
      len = buf.write(item.value, v, 'utf8');
      break;
    case 'ByteString':
      buf.set(item.value, v);
      len = item.value.length;
      break;
  }
  buf.writeUInt32BE(len, off + 4);
  return v + len + pad8(len);
}

/*
 * Big-integer conversions go through hex strings: BigInt('0x…') and toString(16) are linear in the length,
 * where a byte-at-a-time shift loop is quadratic (a 512 KiB Big Integer took minutes).
 */

/** Two's complement big-endian bytes → bigint. */
export function bigFromBytes(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  const v = unsignedFromBytes(b);
  return b[0]! & 0x80 ? v - (1n << BigInt(b.length * 8)) : v;
}

/** bigint → two's complement, sign-padded on the left to a multiple of 8 bytes (§9.1.1.4). */
export function bigToBytes(v: bigint): Buffer {
  // Non-negative values need a clear top bit, negative ones (~magnitude) a set one: size by the magnitude.
  const magnitude = v < 0n ? -v - 1n : v;
  const hex = magnitude === 0n ? '' : magnitude.toString(16);
  const bits = hex.length === 0 ? 0 : (hex.length - 1) * 4 + parseInt(hex[0]!, 16).toString(2).length;
  const n = Math.max(8, Math.ceil((bits + 1) / 64) * 8);
  if (v >= 0n) return Buffer.from(hex.padStart(n * 2, '0'), 'hex');
  return Buffer.from(((1n << BigInt(n * 8)) + v).toString(16).padStart(n * 2, '0'), 'hex');
}

/** An unsigned big-endian byte string (an RSA modulus from node:crypto or PKCS#11) as a bigint. */
export function unsignedFromBytes(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

/** Minimal unsigned big-endian bytes of a non-negative bigint. */
export function unsignedToBytes(v: bigint): Buffer {
  if (v < 0n) throw new RangeError('negative value');
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex');
}

/** Read the total message length (header + value) from the first 8 bytes, for framing on a stream. */
export function frameLength(head: Uint8Array): number {
  if (head.length < 8) throw new TtlvError(`truncated item header (${head.length} of 8 bytes)`, 0, []);
  const len = new DataView(head.buffer, head.byteOffset, 8).getUint32(4);
  return 8 + len + pad8(len);
}
