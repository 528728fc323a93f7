/** PKCS#11 return values out of pkcs11js errors: the code, its name, and whether it means the session was lost. */
// pkcs11js is CommonJS; only the default import carries all of its constants at run time.
import pkcs11 from 'pkcs11js';
import { ckrName } from './constants.js';

/** The CK_RV of a pkcs11js error, or undefined for anything else. */
export function ckrOf(err: unknown): number | undefined {
  if (err instanceof pkcs11.Pkcs11Error) return err.code;
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'number' &&
    (err as { name?: string }).name === 'Pkcs11Error'
  )
    return (err as { code: number }).code;
  // pkcs11js 2.1 throws a plain Error "CKR_…:<decimal>" from C_CreateObject, C_SetAttributeValue and C_CopyObject
  // (its wrappers for those call the native method directly, bypassing its Pkcs11Error conversion).
  const m = err instanceof Error ? /^(CKR_[A-Z0-9_]+):(\d+)$/.exec(err.message) : null;
  return m ? Number(m[2]) : undefined;
}

export function isCkr(err: unknown, code: number): boolean {
  return ckrOf(err) === code;
}

/** The CKR name of a PKCS#11 error, or the message of any other. */
export function describeCkr(err: unknown): string {
  const code = ckrOf(err);
  return code !== undefined ? ckrName(code) : err instanceof Error ? err.message : String(err);
}

/**
 * Session and login losses: OpenSC invalidates a process's sessions when another process touches the card,
 * and a reader can drop the card. After one of these, cleanup reopens a session and logs in again.
 */
const SESSION_LOST = new Set<number>([
  pkcs11.CKR_SESSION_HANDLE_INVALID,
  pkcs11.CKR_SESSION_CLOSED,
  pkcs11.CKR_USER_NOT_LOGGED_IN,
  pkcs11.CKR_DEVICE_REMOVED,
  pkcs11.CKR_TOKEN_NOT_PRESENT,
  pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
]);
export function isSessionLost(err: unknown): boolean {
  const code = ckrOf(err);
  return code !== undefined && SESSION_LOST.has(code);
}
