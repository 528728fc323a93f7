/**
 * One signer thread of the ods-hsmspeed method (bench.md §1): its own session on the already logged-in
 * token, then per signature SHA-1 in software, the SHA-1 DigestInfo, blocking C_SignInit + C_Sign with
 * CKM_RSA_PKCS. Threads wait on a shared flag so that the parent starts the clock for all of them at once,
 * and write their finishing time into shared memory, so no message latency enters the window.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import pkcs11 from 'pkcs11js';
import { SIGNED_DATA } from './signed-data.js';

export interface HsmspeedThreadData {
  modulePath: string;
  slot: Uint8Array;
  /** CKA_ID of the private key: handles need not be valid here (p11-kit's client may open its own connection). */
  keyId: Uint8Array;
  /** Only used when this thread's session is not logged in already (a module that keeps state per connection). */
  pin: string;
  iterations: number;
  index: number;
  /** Int32 start flag at byte 0, then one BigInt64 finishing time (process.hrtime) per thread from byte 8. */
  shared: SharedArrayBuffer;
}

// Session states (PKCS#11 2.40 §5.6); pkcs11js does not export them.
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;
const SHA1_DIGEST_INFO_PREFIX = Buffer.from('3021300906052b0e03021a05000414', 'hex');

function main(d: HsmspeedThreadData): void {
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
  lib.C_FindObjectsInit(session, [{ type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY }, { type: pkcs11.CKA_ID, value: Buffer.from(d.keyId) }]);
  const [key] = lib.C_FindObjects(session, 1);
  lib.C_FindObjectsFinal(session);
  if (!key) throw new Error('the RSA-2048 key is not visible from the signer thread');
  const mechanism = { mechanism: pkcs11.CKM_RSA_PKCS };
  const digestInfo = Buffer.alloc(SHA1_DIGEST_INFO_PREFIX.length + 20);
  SHA1_DIGEST_INFO_PREFIX.copy(digestInfo);
  const out = Buffer.alloc(1024);
  const signOnce = () => {
    createHash('sha1').update(SIGNED_DATA).digest().copy(digestInfo, SHA1_DIGEST_INFO_PREFIX.length);
    lib.C_SignInit(session, mechanism, key);
    lib.C_Sign(session, digestInfo, out);
  };
  try {
    // Warm-up before the window (JIT, first use of the key in this session).
    for (let i = 0; i < 3; i++) signOnce();
    const flag = new Int32Array(d.shared, 0, 1);
    const finished = new BigInt64Array(d.shared, 8);
    parentPort!.postMessage('ready');
    Atomics.wait(flag, 0, 0);
    for (let i = 0; i < d.iterations; i++) signOnce();
    finished[d.index] = process.hrtime.bigint();
  } finally {
    // No C_Finalize: the module belongs to the parent thread.
    try { lib.C_CloseSession(session); } catch { /* gone */ }
  }
}

main(workerData as HsmspeedThreadData);
