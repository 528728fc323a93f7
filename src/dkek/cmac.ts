/**
 * AES-CMAC (RFC 4493, NIST SP 800-38B) as a small construction over node:crypto's AES-CBC: the MAC is the
 * last block of a zero-IV CBC encryption of the message whose last block is masked with subkey K1 (complete
 * block) or K2 (padded block). Tested against the RFC 4493 §4 vectors.
 */
import { createCipheriv, timingSafeEqual } from 'node:crypto';
import { wipe } from '../secrets.js';

const ZERO_IV = Buffer.alloc(16);

function cipherName(key: Uint8Array): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new Error(`AES key must be 16, 24 or 32 bytes, not ${key.length}`);
  return `aes-${key.length * 8}-cbc`;
}

function cbcLastBlock(key: Uint8Array, data: Buffer): Buffer {
  const c = createCipheriv(cipherName(key), key, ZERO_IV).setAutoPadding(false);
  const out = Buffer.concat([c.update(data), c.final()]);
  const last = Buffer.from(out.subarray(out.length - 16));
  wipe(out);
  return last;
}

/** Doubling in GF(2^128): shift left one bit, xor Rb = 0x87 into the last byte if the top bit fell off. */
function double(block: Buffer): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = ((block[i]! << 1) & 0xff) | (i < 15 ? block[i + 1]! >> 7 : 0);
  if (block[0]! & 0x80) out[15]! ^= 0x87;
  return out;
}

export function aesCmac(key: Uint8Array, message: Uint8Array): Buffer {
  const l = cbcLastBlock(key, Buffer.alloc(16));
  const k1 = double(l);
  const k2 = double(k1);
  const blocks = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const m = Buffer.alloc(blocks * 16);
  Buffer.from(message.buffer, message.byteOffset, message.length).copy(m);
  if (!complete) m[message.length] = 0x80;
  const mask = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) m[(blocks - 1) * 16 + i]! ^= mask[i]!;
  const mac = cbcLastBlock(key, m);
  wipe(l, k1, k2, m);
  return mac;
}

export function aesCmacVerify(key: Uint8Array, message: Uint8Array, mac: Uint8Array): boolean {
  const expected = aesCmac(key, message);
  return mac.length === 16 && timingSafeEqual(expected, mac);
}
