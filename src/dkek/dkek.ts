/**
 * The DKEK itself (docs/dkek-formats.md §3): the XOR of its 32-byte shares, its key check value, and the two AES-256
 * keys derived from it for key blobs. Also the one error type of the DKEK library: DkekError carries a
 * one-line message that names the cause and never contains key material; the CLI turns it into exit 2,
 * except DkekVerifyError (a backup that fails verification), exit 1.
 */
import { createHash } from 'node:crypto';
import { wipe } from '../secrets.js';

export class DkekError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DkekError';
  }
}

/**
 * The backup itself fails verification (wrapped under another DKEK, CMAC wrong): not bad input, a finding
 * about the backup. `dkek blob-verify` reports it and exits 1.
 */
export class DkekVerifyError extends DkekError {
  constructor(message: string) {
    super(message);
    this.name = 'DkekVerifyError';
  }
}

export const SHARE_BYTES = 32;

export function assembleDkek(shares: Uint8Array[]): Buffer {
  if (shares.length === 0) throw new DkekError('no DKEK shares given; pass at least one --share');
  const dkek = Buffer.alloc(SHARE_BYTES);
  for (const s of shares) {
    if (s.length !== SHARE_BYTES) throw new DkekError(`a DKEK share is ${s.length} bytes, expected ${SHARE_BYTES}`);
    for (let i = 0; i < SHARE_BYTES; i++) dkek[i]! ^= s[i]!;
  }
  return dkek;
}

/** First 8 bytes of SHA-256(DKEK); sc-hsm-tool prints it in upper-case hex. */
export function kcvOf(dkek: Uint8Array): Buffer {
  return createHash('sha256').update(dkek).digest().subarray(0, 8);
}

export function formatKcv(kcv: Uint8Array): string {
  return Buffer.from(kcv).toString('hex').toUpperCase();
}

function derive(dkek: Uint8Array, counter: number): Buffer {
  const c = Buffer.alloc(4);
  c.writeUInt32BE(counter);
  return createHash('sha256').update(dkek).update(c).digest();
}

/** AES-256 key that encrypts key blobs: SHA-256(DKEK ‖ 00000001). */
export function kencOf(dkek: Uint8Array): Buffer {
  return derive(dkek, 1);
}

/** AES-256 key that MACs key blobs: SHA-256(DKEK ‖ 00000002). */
export function kmacOf(dkek: Uint8Array): Buffer {
  return derive(dkek, 2);
}

/**
 * The harness's own AES-256 key-wrapping key for PKCS#11 round trips (CKM_AES_KEY_WRAP_PAD between two
 * tokens that share a DKEK). Counter 3 is not used by the card; a separate key keeps KWP away from the
 * keys that protect card blobs.
 */
export function pkcs11WrapKeyOf(dkek: Uint8Array): Buffer {
  return derive(dkek, 3);
}

/** A DKEK with its KCV; wipe() when done. */
export class Dkek {
  readonly kcv: Buffer;
  private constructor(private readonly value: Buffer) {
    this.kcv = kcvOf(value);
  }

  static fromShares(shares: Uint8Array[]): Dkek {
    return new Dkek(assembleDkek(shares));
  }

  get kcvHex(): string {
    return formatKcv(this.kcv);
  }

  /** Derived keys are fresh buffers: the caller wipes them. */
  kenc(): Buffer {
    return kencOf(this.value);
  }
  kmac(): Buffer {
    return kmacOf(this.value);
  }
  pkcs11WrapKey(): Buffer {
    return pkcs11WrapKeyOf(this.value);
  }

  wipe(): void {
    wipe(this.value);
  }
}
