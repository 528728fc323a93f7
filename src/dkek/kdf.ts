/**
 * OpenSSL EVP_BytesToKey with MD5, as sc-hsm-tool uses it for DKEK share files (OpenSC src/tools/sc-hsm-tool.c; docs/dkek-formats.md §1): 10,000,000
 * iterations per 16-byte block, three blocks for an AES-256 key and IV.
 *
 * Why not a createHash('md5') loop: 30 million hash objects take over a minute in Node. After the first hash
 * of each block every input is one 16-byte digest, i.e. a single MD5 block whose padding never changes, so
 * the compression function below is specialised for exactly that input (RFC 1321 §3.4 with M[4] = 0x80,
 * M[14] = 128 bits and the other padding words zero) and works on 32-bit words in local variables.
 * node:crypto's MD5 still does the first, variable-length hash of each block, and the tests compare the
 * specialised loop with node:crypto on small iteration counts.
 */
import { createHash } from 'node:crypto';
import { wipe } from '../secrets.js';

/** sc-hsm-tool hard-codes this count (no option changes it). */
export const SHARE_KDF_ITERATIONS = 10_000_000;

/**
 * Apply MD5 `times` more times to a 16-byte digest, in place. Words are little-endian (RFC 1321 §3.4):
 * the message is x0..x3 = the digest, x4 = 0x80, x14 = 128 (length in bits), all other words 0.
 */
export function md5RehashDigest(digest: Uint8Array, times: number): void {
  if (digest.length !== 16) throw new Error('md5RehashDigest needs a 16-byte digest');
  const view = new DataView(digest.buffer, digest.byteOffset, 16);
  let x0 = view.getInt32(0, true),
    x1 = view.getInt32(4, true),
    x2 = view.getInt32(8, true),
    x3 = view.getInt32(12, true);
  for (let i = 0; i < times; i++) {
    let a = 0x67452301,
      b = 0xefcdab89 | 0,
      c = 0x98badcfe | 0,
      d = 0x10325476,
      t: number;
    // Fully unrolled by hand: V8 stops inlining helper functions long before 64 steps, which made the
    // loop three times slower. Step: t = a + f(b,c,d) + word + T[i]; a = b + (t <<< s). Padding words that
    // are zero are left out; 0x80 (word 4) and 128 (word 14) are the fixed padding of a 16-byte message.
    // Round 1: F(b,c,d) = d ^ (b & (c ^ d)), words 0..15 in order.
    t = (a + (d ^ (b & (c ^ d))) + x0 + (0xd76aa478 | 0)) | 0;
    a = (((t << 7) | (t >>> 25)) + b) | 0;
    t = (d + (c ^ (a & (b ^ c))) + x1 + (0xe8c7b756 | 0)) | 0;
    d = (((t << 12) | (t >>> 20)) + a) | 0;
    t = (c + (b ^ (d & (a ^ b))) + x2 + (0x242070db | 0)) | 0;
    c = (((t << 17) | (t >>> 15)) + d) | 0;
    t = (b + (a ^ (c & (d ^ a))) + x3 + (0xc1bdceee | 0)) | 0;
    b = (((t << 22) | (t >>> 10)) + c) | 0;
    t = (a + (d ^ (b & (c ^ d))) + 0x80 + (0xf57c0faf | 0)) | 0;
    a = (((t << 7) | (t >>> 25)) + b) | 0;
    t = (d + (c ^ (a & (b ^ c))) + (0x4787c62a | 0)) | 0;
    d = (((t << 12) | (t >>> 20)) + a) | 0;
    t = (c + (b ^ (d & (a ^ b))) + (0xa8304613 | 0)) | 0;
    c = (((t << 17) | (t >>> 15)) + d) | 0;
    t = (b + (a ^ (c & (d ^ a))) + (0xfd469501 | 0)) | 0;
    b = (((t << 22) | (t >>> 10)) + c) | 0;
    t = (a + (d ^ (b & (c ^ d))) + (0x698098d8 | 0)) | 0;
    a = (((t << 7) | (t >>> 25)) + b) | 0;
    t = (d + (c ^ (a & (b ^ c))) + (0x8b44f7af | 0)) | 0;
    d = (((t << 12) | (t >>> 20)) + a) | 0;
    t = (c + (b ^ (d & (a ^ b))) + (0xffff5bb1 | 0)) | 0;
    c = (((t << 17) | (t >>> 15)) + d) | 0;
    t = (b + (a ^ (c & (d ^ a))) + (0x895cd7be | 0)) | 0;
    b = (((t << 22) | (t >>> 10)) + c) | 0;
    t = (a + (d ^ (b & (c ^ d))) + (0x6b901122 | 0)) | 0;
    a = (((t << 7) | (t >>> 25)) + b) | 0;
    t = (d + (c ^ (a & (b ^ c))) + (0xfd987193 | 0)) | 0;
    d = (((t << 12) | (t >>> 20)) + a) | 0;
    t = (c + (b ^ (d & (a ^ b))) + 128 + (0xa679438e | 0)) | 0;
    c = (((t << 17) | (t >>> 15)) + d) | 0;
    t = (b + (a ^ (c & (d ^ a))) + (0x49b40821 | 0)) | 0;
    b = (((t << 22) | (t >>> 10)) + c) | 0;
    // Round 2: G(b,c,d) = c ^ (d & (b ^ c)), words 1,6,11,0,5,10,15,4,9,14,3,8,13,2,7,12.
    t = (a + (c ^ (d & (b ^ c))) + x1 + (0xf61e2562 | 0)) | 0;
    a = (((t << 5) | (t >>> 27)) + b) | 0;
    t = (d + (b ^ (c & (a ^ b))) + (0xc040b340 | 0)) | 0;
    d = (((t << 9) | (t >>> 23)) + a) | 0;
    t = (c + (a ^ (b & (d ^ a))) + (0x265e5a51 | 0)) | 0;
    c = (((t << 14) | (t >>> 18)) + d) | 0;
    t = (b + (d ^ (a & (c ^ d))) + x0 + (0xe9b6c7aa | 0)) | 0;
    b = (((t << 20) | (t >>> 12)) + c) | 0;
    t = (a + (c ^ (d & (b ^ c))) + (0xd62f105d | 0)) | 0;
    a = (((t << 5) | (t >>> 27)) + b) | 0;
    t = (d + (b ^ (c & (a ^ b))) + (0x02441453 | 0)) | 0;
    d = (((t << 9) | (t >>> 23)) + a) | 0;
    t = (c + (a ^ (b & (d ^ a))) + (0xd8a1e681 | 0)) | 0;
    c = (((t << 14) | (t >>> 18)) + d) | 0;
    t = (b + (d ^ (a & (c ^ d))) + 0x80 + (0xe7d3fbc8 | 0)) | 0;
    b = (((t << 20) | (t >>> 12)) + c) | 0;
    t = (a + (c ^ (d & (b ^ c))) + (0x21e1cde6 | 0)) | 0;
    a = (((t << 5) | (t >>> 27)) + b) | 0;
    t = (d + (b ^ (c & (a ^ b))) + 128 + (0xc33707d6 | 0)) | 0;
    d = (((t << 9) | (t >>> 23)) + a) | 0;
    t = (c + (a ^ (b & (d ^ a))) + x3 + (0xf4d50d87 | 0)) | 0;
    c = (((t << 14) | (t >>> 18)) + d) | 0;
    t = (b + (d ^ (a & (c ^ d))) + (0x455a14ed | 0)) | 0;
    b = (((t << 20) | (t >>> 12)) + c) | 0;
    t = (a + (c ^ (d & (b ^ c))) + (0xa9e3e905 | 0)) | 0;
    a = (((t << 5) | (t >>> 27)) + b) | 0;
    t = (d + (b ^ (c & (a ^ b))) + x2 + (0xfcefa3f8 | 0)) | 0;
    d = (((t << 9) | (t >>> 23)) + a) | 0;
    t = (c + (a ^ (b & (d ^ a))) + (0x676f02d9 | 0)) | 0;
    c = (((t << 14) | (t >>> 18)) + d) | 0;
    t = (b + (d ^ (a & (c ^ d))) + (0x8d2a4c8a | 0)) | 0;
    b = (((t << 20) | (t >>> 12)) + c) | 0;
    // Round 3: H(b,c,d) = b ^ c ^ d, words 5,8,11,14,1,4,7,10,13,0,3,6,9,12,15,2.
    t = (a + (b ^ c ^ d) + (0xfffa3942 | 0)) | 0;
    a = (((t << 4) | (t >>> 28)) + b) | 0;
    t = (d + (a ^ b ^ c) + (0x8771f681 | 0)) | 0;
    d = (((t << 11) | (t >>> 21)) + a) | 0;
    t = (c + (d ^ a ^ b) + (0x6d9d6122 | 0)) | 0;
    c = (((t << 16) | (t >>> 16)) + d) | 0;
    t = (b + (c ^ d ^ a) + 128 + (0xfde5380c | 0)) | 0;
    b = (((t << 23) | (t >>> 9)) + c) | 0;
    t = (a + (b ^ c ^ d) + x1 + (0xa4beea44 | 0)) | 0;
    a = (((t << 4) | (t >>> 28)) + b) | 0;
    t = (d + (a ^ b ^ c) + 0x80 + (0x4bdecfa9 | 0)) | 0;
    d = (((t << 11) | (t >>> 21)) + a) | 0;
    t = (c + (d ^ a ^ b) + (0xf6bb4b60 | 0)) | 0;
    c = (((t << 16) | (t >>> 16)) + d) | 0;
    t = (b + (c ^ d ^ a) + (0xbebfbc70 | 0)) | 0;
    b = (((t << 23) | (t >>> 9)) + c) | 0;
    t = (a + (b ^ c ^ d) + (0x289b7ec6 | 0)) | 0;
    a = (((t << 4) | (t >>> 28)) + b) | 0;
    t = (d + (a ^ b ^ c) + x0 + (0xeaa127fa | 0)) | 0;
    d = (((t << 11) | (t >>> 21)) + a) | 0;
    t = (c + (d ^ a ^ b) + x3 + (0xd4ef3085 | 0)) | 0;
    c = (((t << 16) | (t >>> 16)) + d) | 0;
    t = (b + (c ^ d ^ a) + (0x04881d05 | 0)) | 0;
    b = (((t << 23) | (t >>> 9)) + c) | 0;
    t = (a + (b ^ c ^ d) + (0xd9d4d039 | 0)) | 0;
    a = (((t << 4) | (t >>> 28)) + b) | 0;
    t = (d + (a ^ b ^ c) + (0xe6db99e5 | 0)) | 0;
    d = (((t << 11) | (t >>> 21)) + a) | 0;
    t = (c + (d ^ a ^ b) + (0x1fa27cf8 | 0)) | 0;
    c = (((t << 16) | (t >>> 16)) + d) | 0;
    t = (b + (c ^ d ^ a) + x2 + (0xc4ac5665 | 0)) | 0;
    b = (((t << 23) | (t >>> 9)) + c) | 0;
    // Round 4: I(b,c,d) = c ^ (b | ~d), words 0,7,14,5,12,3,10,1,8,15,6,13,4,11,2,9.
    t = (a + (c ^ (b | ~d)) + x0 + (0xf4292244 | 0)) | 0;
    a = (((t << 6) | (t >>> 26)) + b) | 0;
    t = (d + (b ^ (a | ~c)) + (0x432aff97 | 0)) | 0;
    d = (((t << 10) | (t >>> 22)) + a) | 0;
    t = (c + (a ^ (d | ~b)) + 128 + (0xab9423a7 | 0)) | 0;
    c = (((t << 15) | (t >>> 17)) + d) | 0;
    t = (b + (d ^ (c | ~a)) + (0xfc93a039 | 0)) | 0;
    b = (((t << 21) | (t >>> 11)) + c) | 0;
    t = (a + (c ^ (b | ~d)) + (0x655b59c3 | 0)) | 0;
    a = (((t << 6) | (t >>> 26)) + b) | 0;
    t = (d + (b ^ (a | ~c)) + x3 + (0x8f0ccc92 | 0)) | 0;
    d = (((t << 10) | (t >>> 22)) + a) | 0;
    t = (c + (a ^ (d | ~b)) + (0xffeff47d | 0)) | 0;
    c = (((t << 15) | (t >>> 17)) + d) | 0;
    t = (b + (d ^ (c | ~a)) + x1 + (0x85845dd1 | 0)) | 0;
    b = (((t << 21) | (t >>> 11)) + c) | 0;
    t = (a + (c ^ (b | ~d)) + (0x6fa87e4f | 0)) | 0;
    a = (((t << 6) | (t >>> 26)) + b) | 0;
    t = (d + (b ^ (a | ~c)) + (0xfe2ce6e0 | 0)) | 0;
    d = (((t << 10) | (t >>> 22)) + a) | 0;
    t = (c + (a ^ (d | ~b)) + (0xa3014314 | 0)) | 0;
    c = (((t << 15) | (t >>> 17)) + d) | 0;
    t = (b + (d ^ (c | ~a)) + (0x4e0811a1 | 0)) | 0;
    b = (((t << 21) | (t >>> 11)) + c) | 0;
    t = (a + (c ^ (b | ~d)) + 0x80 + (0xf7537e82 | 0)) | 0;
    a = (((t << 6) | (t >>> 26)) + b) | 0;
    t = (d + (b ^ (a | ~c)) + (0xbd3af235 | 0)) | 0;
    d = (((t << 10) | (t >>> 22)) + a) | 0;
    t = (c + (a ^ (d | ~b)) + x2 + (0x2ad7d2bb | 0)) | 0;
    c = (((t << 15) | (t >>> 17)) + d) | 0;
    t = (b + (d ^ (c | ~a)) + (0xeb86d391 | 0)) | 0;
    b = (((t << 21) | (t >>> 11)) + c) | 0;
    x0 = (a + 0x67452301) | 0;
    x1 = (b + (0xefcdab89 | 0)) | 0;
    x2 = (c + (0x98badcfe | 0)) | 0;
    x3 = (d + 0x10325476) | 0;
  }
  view.setInt32(0, x0, true);
  view.setInt32(4, x1, true);
  view.setInt32(8, x2, true);
  view.setInt32(12, x3, true);
}

/**
 * EVP_BytesToKey(MD5, salt, password, iterations) producing `length` bytes:
 * D_i = MD5^iterations(D_{i-1} ‖ password ‖ salt), output = D_1 ‖ D_2 ‖ …
 */
export function evpBytesToKeyMd5(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Buffer {
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error('iterations must be a positive integer');
  const out = Buffer.alloc(Math.ceil(length / 16) * 16);
  let prev: Buffer = Buffer.alloc(0);
  for (let off = 0; off < out.length; off += 16) {
    const d = createHash('md5').update(prev).update(password).update(salt).digest();
    md5RehashDigest(d, iterations - 1);
    d.copy(out, off);
    wipe(prev);
    prev = d;
  }
  wipe(prev);
  const result = Buffer.from(out.subarray(0, length));
  wipe(out);
  return result;
}

/** The AES-256-CBC key and IV of a DKEK share file (docs/dkek-formats.md §1). */
export function shareFileKeyIv(password: Uint8Array, salt: Uint8Array, iterations = SHARE_KDF_ITERATIONS): { key: Buffer; iv: Buffer } {
  const keyIv = evpBytesToKeyMd5(password, salt, iterations, 48);
  const key = Buffer.from(keyIv.subarray(0, 32));
  const iv = Buffer.from(keyIv.subarray(32, 48));
  wipe(keyIv);
  return { key, iv };
}
