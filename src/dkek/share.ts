/**
 * DKEK share files (`*.pbe`, docs/dkek-formats.md §1): "Salted__" ‖ salt[8] ‖ AES-256-CBC(share[32] ‖ 16 × 0x10), key and
 * IV from EVP_BytesToKey(MD5, 10,000,000 iterations). Byte-compatible with `sc-hsm-tool --create-dkek-share`.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { shareFileKeyIv, SHARE_KDF_ITERATIONS } from './kdf.js';
import { DkekError, SHARE_BYTES } from './dkek.js';
import { wipe } from '../secrets.js';

export const SHARE_FILE_BYTES = 64;
const MAGIC = Buffer.from('Salted__', 'ascii');
const PADDING = Buffer.alloc(16, 0x10);

/** A password is bytes: UTF-8 text from env/file, or the 8 raw bytes recovered from password shares. */
export type Password = string | Uint8Array;

export function passwordBytes(p: Password): Buffer {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
}

export function isShareFile(data: Uint8Array): boolean {
  return data.length === SHARE_FILE_BYTES && MAGIC.equals(Buffer.from(data.subarray(0, 8)));
}

/** Encrypt a share (32 random bytes unless given) under a password. */
export function createShareFile(
  password: Password,
  opts: { share?: Uint8Array; salt?: Uint8Array; iterations?: number } = {},
): { file: Buffer; share: Buffer } {
  const share = opts.share ? Buffer.from(opts.share) : randomBytes(SHARE_BYTES);
  if (share.length !== SHARE_BYTES) throw new DkekError(`a DKEK share must be ${SHARE_BYTES} bytes`);
  const salt = opts.salt ? Buffer.from(opts.salt) : randomBytes(8);
  if (salt.length !== 8) throw new DkekError('the share file salt must be 8 bytes');
  const pw = passwordBytes(password);
  const { key, iv } = shareFileKeyIv(pw, salt, opts.iterations ?? SHARE_KDF_ITERATIONS);
  const c = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
  const plain = Buffer.concat([share, PADDING]);
  const file = Buffer.concat([MAGIC, salt, c.update(plain), c.final()]);
  wipe(pw, key, iv, plain);
  return { file, share };
}

/** Decrypt a share file. `what` names the file in errors. */
export function decryptShareFile(file: Uint8Array, password: Password, what = 'share file', iterations = SHARE_KDF_ITERATIONS): Buffer {
  if (!isShareFile(file)) {
    throw new DkekError(
      `${what} is not a DKEK share file (expected ${SHARE_FILE_BYTES} bytes starting with "Salted__", got ${file.length} bytes); check that it is the .pbe file sc-hsm-tool created`,
    );
  }
  const data = Buffer.from(file);
  const pw = passwordBytes(password);
  const { key, iv } = shareFileKeyIv(pw, data.subarray(8, 16), iterations);
  const d = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
  const plain = Buffer.concat([d.update(data.subarray(16)), d.final()]);
  wipe(pw, key, iv);
  // sc-hsm-tool relies on the PKCS#7 padding check; CardContact compares all 16 padding bytes, as here.
  const ok = timingSafeEqual(plain.subarray(SHARE_BYTES), PADDING);
  const share = Buffer.from(plain.subarray(0, SHARE_BYTES));
  wipe(plain);
  if (!ok) {
    wipe(share);
    throw new DkekError(`${what}: wrong password or corrupted share file`);
  }
  return share;
}
