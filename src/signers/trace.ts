/**
 * What a signer asked of the token, recorded with OpenSC's pkcs11-spy wrapped around the module under test
 * (PKCS11SPY = the real module, PKCS11SPY_OUTPUT = the log). pkcs11-spy writes everything, the PIN of C_Login
 * included: the log is created 0600 in the signer's private work directory, parsed here into function and
 * mechanism names only, and deleted. Nothing else of it leaves this file.
 */
import { existsSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mechanismName } from '../pkcs11/constants.js';

export const PKCS11_SPY = process.env.HSM_PKCS11_SPY ?? '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so';

export function spyAvailable(): boolean {
  return existsSync(PKCS11_SPY);
}

/** Calls per PKCS#11 function, and the mechanisms passed to each (e.g. "C_SignInit CKM_ECDSA"). */
export interface Pkcs11Trace {
  functions: Record<string, number>;
  mechanisms: Record<string, number>;
}

export function emptyTrace(): Pkcs11Trace {
  return { functions: {}, mechanisms: {} };
}

export function addTraces(into: Pkcs11Trace, t: Pkcs11Trace): Pkcs11Trace {
  for (const [k, v] of Object.entries(t.functions)) into.functions[k] = (into.functions[k] ?? 0) + v;
  for (const [k, v] of Object.entries(t.mechanisms)) into.mechanisms[k] = (into.mechanisms[k] ?? 0) + v;
  return into;
}

/**
 * Parse pkcs11-spy's log. Function lines are "<n>: C_Name"; a mechanism appears as "pMechanism->type = CKM_X"
 * (…Init, C_GenerateKeyPair) or "type = CKM_X" (C_GetMechanismInfo). Only names matching these patterns are
 * kept, so no attribute value, data or PIN can pass through.
 */
export function parseSpyLog(log: string): Pkcs11Trace {
  const t = emptyTrace();
  let current = '';
  for (const line of log.split('\n')) {
    const fn = /^\d+: (C_[A-Za-z]+)\b/.exec(line);
    if (fn) {
      current = fn[1]!;
      t.functions[current] = (t.functions[current] ?? 0) + 1;
      continue;
    }
    const mech = /^\[in\] (?:pMechanism->)?type = (CKM_[A-Z0-9_]+|0x[0-9A-Fa-f]+)\b/.exec(line.trim());
    if (mech && current) {
      // pkcs11-spy prints mechanisms it has no name for (CKM_EC_EDWARDS_KEY_PAIR_GEN in OpenSC 0.23) as hex.
      const name = mech[1]!.startsWith('0x') ? mechanismName(Number.parseInt(mech[1]!, 16)) : mech[1]!;
      const k = `${current} ${name}`;
      t.mechanisms[k] = (t.mechanisms[k] ?? 0) + 1;
    }
  }
  return t;
}

/** A spy log file for one signer run, created empty and 0600 before the signer starts. */
export async function spyLog(
  workDir: string,
  name: string,
): Promise<{ path: string; env: (realModule: string) => Record<string, string>; collect(): Promise<Pkcs11Trace> }> {
  const path = join(workDir, `${name}.spy.log`);
  await (await open(path, 'w', 0o600)).close();
  return {
    path,
    env: (realModule) => ({ PKCS11SPY: realModule, PKCS11SPY_OUTPUT: path }),
    async collect() {
      try {
        return parseSpyLog(await readFile(path, 'utf8'));
      } finally {
        await rm(path, { force: true });
      }
    },
  };
}
