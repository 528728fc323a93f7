/**
 * PKCS#11 modules in this process: one pkcs11js instance per module path, initialised once with
 * CKF_OS_LOCKING_OK (PKCS#11 3.0 §5.4.1; docs/pkcs11-notes.md §1) and counted, so the last release finalizes it;
 * and the decoding of the plain values a module hands back.
 */
// pkcs11js is CommonJS; only the default import carries all of its constants at run time.
import pkcs11 from 'pkcs11js';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { ckrOf } from './ckr.js';

export type Handle = Buffer;
export type Template = pkcs11.Template;
export { pkcs11 };

const loaded = new Map<string, { lib: pkcs11.PKCS11; refs: number; initCode: number }>();

export interface LoadedModule {
  path: string;
  lib: pkcs11.PKCS11;
  /** CKR of our C_Initialize call: CKR_OK, or CKR_CRYPTOKI_ALREADY_INITIALIZED when another user initialised it first. */
  initCode: number;
  release(): void;
}

/** Load (once per process) and initialise a module. A missing or unloadable module is a UsageError. */
export function loadModule(path: string): LoadedModule {
  const existing = loaded.get(path);
  if (existing) {
    existing.refs++;
    return handleFor(path, existing);
  }
  if (!existsSync(path)) {
    throw new UsageError(`PKCS#11 module not found: ${path}; install it or point HSM_PKCS11_MODULE at the right file`);
  }
  const lib = new pkcs11.PKCS11();
  try {
    lib.load(path);
  } catch (err) {
    throw new UsageError(
      `cannot load PKCS#11 module ${path}: ${(err as Error).message.split('\n')[0]}; check that it is a PKCS#11 library for this architecture`,
    );
  }
  let initCode = 0;
  try {
    lib.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (err) {
    const code = ckrOf(err);
    if (code === pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) initCode = code;
    else throw err;
  }
  const entry = { lib, refs: 1, initCode };
  loaded.set(path, entry);
  return handleFor(path, entry);
}

function handleFor(path: string, entry: { lib: pkcs11.PKCS11; refs: number; initCode: number }): LoadedModule {
  let released = false;
  return {
    path,
    lib: entry.lib,
    initCode: entry.initCode,
    release() {
      if (released) return;
      released = true;
      entry.refs--;
      if (entry.refs === 0) {
        // C_Finalize but no dlclose: some modules crash when unloaded with threads running (Nitrokey/nethsm-pkcs11#327; docs/pkcs11-notes.md §1).
        try {
          entry.lib.C_Finalize();
        } catch {
          /* already finalised */
        }
        loaded.delete(path);
      }
    },
  };
}

export function trimPadded(s: string): string {
  return s.replace(/[\s\0]+$/, '');
}

/** Decode a CK_ULONG attribute value (native-endian, 8 bytes on x86_64). */
export function readUlong(b: Buffer): number {
  if (b.length === 8) return Number(b.readBigUInt64LE(0));
  if (b.length === 4) return b.readUInt32LE(0);
  throw new Error(`unexpected CK_ULONG length ${b.length}`);
}

export function readBool(b: Buffer): boolean {
  return b.length > 0 && b[0] !== 0;
}
