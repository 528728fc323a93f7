/**
 * DNS wire format for the handful of record types the DNSSEC checks need (RFC 1035, RFC 4034). Each record
 * keeps its wire RDATA (what gets signed) next to its presentation text (what ldns reads back), so that
 * ldns-verify-zone checks that the two agree.
 */

export const RRTYPE = { A: 1, NS: 2, SOA: 6, MX: 15, TXT: 16, AAAA: 28, DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48 } as const;
export const CLASS_IN = 1;

export function typeName(type: number): string {
  const hit = Object.entries(RRTYPE).find(([, v]) => v === type);
  return hit ? hit[0] : `TYPE${type}`;
}

/** One resource record: owner and names are absolute, lower case, with the trailing dot. */
export interface Rr {
  owner: string;
  type: number;
  ttl: number;
  rdata: Buffer;
  /** The RDATA in zone-file presentation form. */
  text: string;
}

/** Make a name absolute and lower case (RFC 4034 §6.2: canonical form uses lower case owner names). */
export function canonicalName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

function labels(name: string): string[] {
  const n = canonicalName(name);
  return n === '.' ? [] : n.slice(0, -1).split('.');
}

/** Uncompressed wire form of a name, lower-cased. Plain LDH names only: no escapes. */
export function nameToWire(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of labels(name)) {
    const b = Buffer.from(label, 'ascii');
    if (b.length < 1 || b.length > 63) throw new Error(`bad label "${label}" in ${name}`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** The RRSIG Labels field: labels in the owner name, not counting the root or a leading wildcard (RFC 4034 §3.1.3). */
export function labelCount(owner: string): number {
  const l = labels(owner);
  return l[0] === '*' ? l.length - 1 : l.length;
}

/** Canonical DNS name order (RFC 4034 §6.1): compare label by label from the right, as lower-case octets. */
export function compareNames(a: string, b: string): number {
  const la = labels(a).reverse();
  const lb = labels(b).reverse();
  for (let i = 0; i < Math.min(la.length, lb.length); i++) {
    const c = Buffer.compare(Buffer.from(la[i]!, 'ascii'), Buffer.from(lb[i]!, 'ascii'));
    if (c !== 0) return c;
  }
  return la.length - lb.length;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
export { u16, u32 };

export function a(owner: string, ttl: number, ip: string): Rr {
  const octets = ip.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) throw new Error(`bad IPv4 address ${ip}`);
  return { owner: canonicalName(owner), type: RRTYPE.A, ttl, rdata: Buffer.from(octets), text: ip };
}

export function ns(owner: string, ttl: number, host: string): Rr {
  return { owner: canonicalName(owner), type: RRTYPE.NS, ttl, rdata: nameToWire(host), text: canonicalName(host) };
}

export function mx(owner: string, ttl: number, preference: number, exchange: string): Rr {
  return {
    owner: canonicalName(owner),
    type: RRTYPE.MX,
    ttl,
    rdata: Buffer.concat([u16(preference), nameToWire(exchange)]),
    text: `${preference} ${canonicalName(exchange)}`,
  };
}

export interface SoaFields {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export function soa(owner: string, ttl: number, f: SoaFields): Rr {
  const rdata = Buffer.concat([nameToWire(f.mname), nameToWire(f.rname), u32(f.serial), u32(f.refresh), u32(f.retry), u32(f.expire), u32(f.minimum)]);
  const text = `${canonicalName(f.mname)} ${canonicalName(f.rname)} ${f.serial} ${f.refresh} ${f.retry} ${f.expire} ${f.minimum}`;
  return { owner: canonicalName(owner), type: RRTYPE.SOA, ttl, rdata, text };
}

/** TXT with printable strings (no quotes or backslashes, so the presentation form needs no escapes). */
export function txt(owner: string, ttl: number, ...strings: string[]): Rr {
  const parts: Buffer[] = [];
  for (const s of strings) {
    if (!/^[\x20-\x7e]*$/.test(s) || /["\\]/.test(s) || s.length > 255) throw new Error(`TXT string needs escaping or is too long: ${s}`);
    parts.push(Buffer.from([s.length]), Buffer.from(s, 'ascii'));
  }
  return { owner: canonicalName(owner), type: RRTYPE.TXT, ttl, rdata: Buffer.concat(parts), text: strings.map((s) => `"${s}"`).join(' ') };
}

/** NSEC type bit maps (RFC 4034 §4.1.2): one window block per 256 types, trailing zero octets dropped. */
export function typeBitmap(types: number[]): Buffer {
  const windows = new Map<number, Buffer>();
  for (const t of types) {
    const w = t >> 8;
    const bits = windows.get(w) ?? Buffer.alloc(32);
    bits[(t & 0xff) >> 3]! |= 0x80 >> (t & 7);
    windows.set(w, bits);
  }
  const out: Buffer[] = [];
  for (const w of [...windows.keys()].sort((x, y) => x - y)) {
    const bits = windows.get(w)!;
    let len = 32;
    while (len > 0 && bits[len - 1] === 0) len--;
    out.push(Buffer.from([w, len]), bits.subarray(0, len));
  }
  return Buffer.concat(out);
}

export function nsec(owner: string, ttl: number, next: string, types: number[]): Rr {
  const sorted = [...new Set(types)].sort((x, y) => x - y);
  return {
    owner: canonicalName(owner),
    type: RRTYPE.NSEC,
    ttl,
    rdata: Buffer.concat([nameToWire(next), typeBitmap(sorted)]),
    text: `${canonicalName(next)} ${sorted.map(typeName).join(' ')}`,
  };
}

/** A record as one zone-file line. */
export function rrLine(rr: Rr): string {
  return `${rr.owner}\t${rr.ttl}\tIN\t${typeName(rr.type)}\t${rr.text}`;
}
