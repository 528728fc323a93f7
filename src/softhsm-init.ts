/**
 * Initialise one SoftHSM token with C_InitToken + C_InitPIN (PKCS#11 v2.40 §5.6), in a process of its own.
 * softhsm2-util takes PINs only as --pin/--so-pin arguments (visible in `ps` and /proc/PID/cmdline to every
 * user) or from a terminal, so the harness does it itself. The request comes on standard input as JSON
 * {module, label, pin, soPin}; SOFTHSM2_CONF in the environment selects the token store. A process of its
 * own, because SoftHSM reads its configuration once per C_Initialize and the caller may have the module
 * loaded on another store. Prints the slot's new token serial on success; errors name the call, never a PIN.
 */
import pkcs11 from 'pkcs11js';
import { ckrName } from './pkcs11/constants.js';

interface Request {
  module: string;
  label: string;
  pin: string;
  soPin: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function step<T>(call: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as { code?: number }).code;
    throw new Error(`${call} failed: ${code !== undefined ? ckrName(code) : (err as Error).message.split('\n')[0]}`);
  }
}

async function main(): Promise<void> {
  const req = JSON.parse(await readStdin()) as Request;
  const lib = new pkcs11.PKCS11();
  lib.load(req.module);
  step('C_Initialize', () => lib.C_Initialize());
  try {
    // SoftHSM always offers one slot with an uninitialised token: the "free" slot.
    const free = step('C_GetSlotList', () => lib.C_GetSlotList(true)).find((slot) => {
      const info = lib.C_GetTokenInfo(slot);
      return (info.flags & pkcs11.CKF_TOKEN_INITIALIZED) === 0;
    });
    if (free === undefined) throw new Error('no slot with an uninitialised token');
    step('C_InitToken', () => lib.C_InitToken(free, req.soPin, req.label.padEnd(32, ' ')));
    // SoftHSM moves the new token to a slot of its own: find it by label.
    const slot = step('C_GetSlotList', () => lib.C_GetSlotList(true)).find((s) => lib.C_GetTokenInfo(s).label.trim() === req.label);
    if (slot === undefined) throw new Error(`the token "${req.label}" did not appear after C_InitToken`);
    const session = step('C_OpenSession', () => lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION));
    step('C_Login (SO)', () => lib.C_Login(session, pkcs11.CKU_SO, req.soPin));
    step('C_InitPIN', () => lib.C_InitPIN(session, req.pin));
    step('C_Logout', () => lib.C_Logout(session));
    step('C_CloseSession', () => lib.C_CloseSession(session));
    process.stdout.write(`${lib.C_GetTokenInfo(slot).serialNumber.trim()}\n`);
  } finally {
    lib.C_Finalize();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`softhsm-init: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
