/**
 * The file `sc-hsm-tool --wrap-key` writes and `--unwrap-key` reads (docs/dkek-formats.md §5):
 *   SEQUENCE { OCTET STRING blob, [PRKD TLV], [certificate TLV] }
 * PRKD (PKCS#15 private key description) and certificate (X.509 or the CV request) are kept as whole TLVs.
 */
import { DkekError } from './dkek.js';
import { parseBlob } from './blob.js';

export interface WrapFile {
  blob: Buffer;
  prkd?: Buffer;
  certificate?: Buffer;
}

/** A file that is a wrap file but damaged (trailing or extra data): never to be re-read as a bare blob. */
class DamagedWrapFile extends DkekError {}

interface Tlv {
  tag: number;
  constructed: boolean;
  headerLength: number;
  length: number;
}

/** Read one BER/DER tag and definite length at `off`; undefined when the bytes do not hold a whole TLV. */
function readTlv(b: Buffer, off: number): Tlv | undefined {
  let p = off;
  if (p >= b.length) return undefined;
  const first = b[p++]!;
  let tag = first;
  if ((first & 0x1f) === 0x1f) {
    // Multi-byte tag (e.g. 7F21): continuation bytes have the top bit set.
    do {
      if (p >= b.length) return undefined;
      tag = tag * 256 + b[p]!;
    } while (b[p++]! & 0x80);
  }
  if (p >= b.length) return undefined;
  let length = b[p++]!;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 3 || p + n > b.length) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + b[p++]!;
  }
  if (p + length > b.length) return undefined;
  return { tag, constructed: (first & 0x20) !== 0, headerLength: p - off, length };
}

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);
}

export function parseWrapFile(data: Uint8Array, what = 'wrap file'): WrapFile {
  const b = Buffer.from(data);
  const outer = readTlv(b, 0);
  if (outer?.tag !== 0x30 || !outer.constructed) {
    throw new DkekError(
      `${what} is truncated or not an sc-hsm-tool wrap file (expected a DER SEQUENCE); check that it is the file sc-hsm-tool --wrap-key wrote`,
    );
  }
  const end = outer.headerLength + outer.length;
  // sc-hsm-tool reads the SEQUENCE and nothing else: bytes after it mean a damaged or concatenated file,
  // which must not pass as a restorable backup.
  if (end !== b.length) {
    throw new DamagedWrapFile(
      `${what} has ${b.length - end} bytes of trailing data after its DER SEQUENCE (at offset ${end}); it is damaged or not one wrap file`,
    );
  }
  const body = b.subarray(0, end);
  const first = readTlv(body, outer.headerLength);
  if (first?.tag !== 0x04 || first.constructed) {
    throw new DkekError(`${what} is not an sc-hsm-tool wrap file (its first element is not an OCTET STRING key blob)`);
  }
  let off = outer.headerLength + first.headerLength;
  const blob = Buffer.from(body.subarray(off, off + first.length));
  off += first.length;
  const rest: Buffer[] = [];
  while (off < end && rest.length < 2) {
    const t = readTlv(body, off);
    if (!t) throw new DkekError(`${what} is truncated (an element after the key blob runs past the end)`);
    rest.push(Buffer.from(body.subarray(off, off + t.headerLength + t.length)));
    off += t.headerLength + t.length;
  }
  if (off !== end)
    throw new DamagedWrapFile(`${what} holds more than a key blob, a PRKD and a certificate (extra data at offset ${off}); it is damaged or not a wrap file`);
  return { blob, prkd: rest[0], certificate: rest[1] };
}

export function encodeWrapFile(w: WrapFile): Buffer {
  return tlv(0x30, Buffer.concat([tlv(0x04, w.blob), w.prkd ?? Buffer.alloc(0), w.certificate ?? Buffer.alloc(0)]));
}

/**
 * A blob given either inside a wrap file or bare. A bare blob starts with its KCV, which is 0x30 one time
 * in 256, so a 0x30 file that does not parse as a wrap file is taken as a bare blob.
 */
export function blobFromFile(data: Uint8Array, what: string): WrapFile {
  if (data.length > 0 && data[0] === 0x30) {
    try {
      return parseWrapFile(data, what);
    } catch (err) {
      if (!(err instanceof DkekError) || err instanceof DamagedWrapFile) throw err;
      // Not a wrap file: a bare blob then, but only if it parses as one; otherwise the wrap-file error
      // ("truncated …") is the one that tells the user what is wrong.
      try {
        parseBlob(data, what);
      } catch {
        throw err;
      }
    }
  }
  return { blob: Buffer.from(data) };
}
