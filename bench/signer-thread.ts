/**
 * One signer thread: its own session on the already logged-in token, then batches of blocking
 * C_SignInit + C_Sign in a tight loop. This is how a multi-threaded signer (OpenDNSSEC, Knot, BIND) drives a
 * token, and the one way the bench measures throughput with any number of threads. With `hsmspeedInput`
 * each signature also pays what ods-hsmspeed pays: SHA-1 of the signed data in software, written into the
 * SHA-1 DigestInfo the parent built (src/pkcs11/mechanisms.ts).
 *
 * Protocol with the parent (bench/threads.ts): after a warm-up the thread posts 'ready' and waits on the
 * shared batch counter. Each new counter value starts one batch: either `iterations` signatures (ods-hsmspeed's
 * method), or a bare pkcs11js loop of the count the parent set (the reference the harness is compared with),
 * or as many as fit in `windowMs` from the moment the thread woke up, the clock read once every few
 * signatures, so that a thread descheduled by other load cannot stretch the others' window. The thread writes
 * its start and finishing times and its count into shared memory (so neither wake-up nor message latency
 * enters the window) and posts 'done' with its last signature, which the parent verifies. A negative counter
 * ends the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import pkcs11 from 'pkcs11js';
import { SIGNED_DATA } from './signed-data.js';

export interface SignerThreadData {
  modulePath: string;
  slot: Uint8Array;
  /** CKA_ID of the private key: handles need not be valid here (p11-kit's client may open its own connection). */
  keyId: Uint8Array;
  /** Only used when this thread's session is not logged in already (a module that keeps state per connection). */
  pin: string;
  mechanism: number;
  /** What goes to C_Sign. */
  input: Uint8Array;
  /** Re-hash SIGNED_DATA with SHA-1 into the last 20 bytes of `input` before every signature. */
  hsmspeedInput: boolean;
  /** Signatures per batch; ignored when windowMs is set. */
  iterations: number;
  /** Sign until this long after the batch's start time (ms). */
  windowMs?: number;
  index: number;
  /**
   * Int32 batch counter at byte 0, Int32 bare-loop count at byte 4 (0 for a harness batch); from byte 8
   * BigInt64 slots, three per thread: start time and finishing time (process.hrtime) of the current batch,
   * then its signature count.
   */
  shared: SharedArrayBuffer;
}

export type SignerThreadMessage = { type: 'ready' } | { type: 'done'; batch: number; signature: Uint8Array };

// Session states (PKCS#11 v2.40 §5.6); pkcs11js does not export them.
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;
/** In a timed window, the clock is read once per this many signatures. */
const CLOCK_EVERY = 4;

function main(d: SignerThreadData): void {
  const lib = new pkcs11.PKCS11();
  lib.load(d.modulePath);
  try {
    lib.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (err) {
    // The parent initialised the module; login state is per application, so this session is logged in.
    if ((err as { code?: number }).code !== pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  const session = lib.C_OpenSession(Buffer.from(d.slot), pkcs11.CKF_SERIAL_SESSION);
  const state = lib.C_GetSessionInfo(session).state;
  if (state !== CKS_RO_USER_FUNCTIONS && state !== CKS_RW_USER_FUNCTIONS) lib.C_Login(session, pkcs11.CKU_USER, d.pin);
  lib.C_FindObjectsInit(session, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
    { type: pkcs11.CKA_ID, value: Buffer.from(d.keyId) },
  ]);
  const [key] = lib.C_FindObjects(session, 1);
  lib.C_FindObjectsFinal(session);
  if (!key) throw new Error('the signing key is not visible from the signer thread');
  const mechanism = { mechanism: d.mechanism };
  const input = Buffer.from(d.input);
  const digestAt = input.length - 20;
  const out = Buffer.alloc(1024);
  let signature: Buffer = Buffer.alloc(0);
  const signOnce = () => {
    if (d.hsmspeedInput) createHash('sha1').update(SIGNED_DATA).digest().copy(input, digestAt);
    lib.C_SignInit(session, mechanism, key);
    signature = lib.C_Sign(session, input, out);
  };
  try {
    // Warm-up before any window (JIT, first use of the key in this session).
    for (let i = 0; i < 3; i++) signOnce();
    const counter = new Int32Array(d.shared, 0, 2);
    const slots = new BigInt64Array(d.shared, 8);
    const windowNs = d.windowMs !== undefined ? BigInt(Math.round(d.windowMs * 1e6)) : undefined;
    parentPort!.postMessage({ type: 'ready' } satisfies SignerThreadMessage);
    let seen = 0;
    for (;;) {
      while (Atomics.load(counter, 0) === seen) Atomics.wait(counter, 0, seen);
      seen = Atomics.load(counter, 0);
      if (seen < 0) break;
      let count = 0;
      const bareIterations = Atomics.load(counter, 1);
      const start = process.hrtime.bigint();
      if (bareIterations > 0) {
        // The reference: what anyone would write with pkcs11js, timed as a whole, in this same thread so that
        // it runs on the same CPU under the same load as the harness's own batches.
        for (; count < bareIterations; count++) {
          lib.C_SignInit(session, mechanism, key);
          signature = lib.C_Sign(session, input, out);
        }
      } else if (windowNs === undefined) {
        for (; count < d.iterations; count++) signOnce();
      } else {
        const deadline = start + windowNs;
        do {
          for (let i = 0; i < CLOCK_EVERY; i++) signOnce();
          count += CLOCK_EVERY;
        } while (process.hrtime.bigint() < deadline);
      }
      slots[3 * d.index + 1] = process.hrtime.bigint();
      slots[3 * d.index] = start;
      slots[3 * d.index + 2] = BigInt(count);
      parentPort!.postMessage({ type: 'done', batch: seen, signature: new Uint8Array(signature) } satisfies SignerThreadMessage);
    }
  } finally {
    // No C_Finalize: the module belongs to the parent thread.
    try {
      lib.C_CloseSession(session);
    } catch {
      /* gone */
    }
  }
}

main(workerData as SignerThreadData);
