/**
 * The one PKCS#11 session helper. Everything that talks to a token goes through here:
 * - one pkcs11js instance per module per process, initialised with CKF_OS_LOCKING_OK (pkcs11.md §1);
 * - tokens are selected by label, serial or slot id, never by slot position;
 * - attributes are read one per call, because C_GetAttributeValue is all-or-nothing in pkcs11js;
 * - every object a suite creates is tracked and destroyed at the end, and the object count is checked.
 */
// pkcs11js is CommonJS; only the default import carries all of its constants at run time.
import pkcs11 from 'pkcs11js';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { ckrName } from './constants.js';

export type Handle = Buffer;
export type Template = pkcs11.Template;
export { pkcs11 };

const loaded = new Map<string, { lib: pkcs11.PKCS11; refs: number; initCode: number }>();

export interface TokenSelector {
  label?: string;
  serial?: string;
  slotId?: number;
  /** Substring of the token label (OpenSC names the SmartCard-HSM user-PIN slot "<label> (UserPIN)"). */
  labelIncludes?: string;
  /** Substring of the slot description (the reader name for smartcards). */
  slotDescriptionIncludes?: string;
}

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
    throw new UsageError(`cannot load PKCS#11 module ${path}: ${(err as Error).message.split('\n')[0]}; check that it is a PKCS#11 library for this architecture`);
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
    path, lib: entry.lib, initCode: entry.initCode,
    release() {
      if (released) return;
      released = true;
      entry.refs--;
      if (entry.refs === 0) {
        // C_Finalize but no dlclose: some modules crash when unloaded with threads running (pkcs11.md §1).
        try { entry.lib.C_Finalize(); } catch { /* already finalised */ }
        loaded.delete(path);
      }
    },
  };
}

/** The CK_RV of a pkcs11js error, or undefined for anything else. */
export function ckrOf(err: unknown): number | undefined {
  if (err instanceof pkcs11.Pkcs11Error) return err.code;
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number'
      && (err as { name?: string }).name === 'Pkcs11Error') return (err as { code: number }).code;
  return undefined;
}

export function isCkr(err: unknown, code: number): boolean {
  return ckrOf(err) === code;
}

export function trimPadded(s: string): string {
  return s.replace(/[\s\0]+$/, '');
}

/** Find the slot whose token matches the selector. Errors list what is there, so the user can fix the label. */
export function findSlot(mod: LoadedModule, sel: TokenSelector): Handle {
  const slots = mod.lib.C_GetSlotList(true);
  const seen: string[] = [];
  for (const slot of slots) {
    const info = mod.lib.C_GetTokenInfo(slot);
    const label = trimPadded(info.label);
    const serial = trimPadded(info.serialNumber);
    seen.push(label);
    if (sel.label !== undefined && label !== sel.label) continue;
    if (sel.serial !== undefined && serial !== sel.serial) continue;
    if (sel.slotId !== undefined && slot.readUIntLE(0, 6) !== sel.slotId) continue;
    if (sel.labelIncludes !== undefined && !label.includes(sel.labelIncludes)) continue;
    if (sel.slotDescriptionIncludes !== undefined
        && !trimPadded(mod.lib.C_GetSlotInfo(slot).slotDescription).includes(sel.slotDescriptionIncludes)) continue;
    return slot;
  }
  const want = sel.label !== undefined ? `label "${sel.label}"` : sel.serial !== undefined ? `serial "${sel.serial}"`
    : sel.slotId !== undefined ? `slot id ${sel.slotId}` : sel.labelIncludes !== undefined ? `a label containing "${sel.labelIncludes}"`
    : sel.slotDescriptionIncludes !== undefined ? `a reader named like "${sel.slotDescriptionIncludes}"` : 'any token';
  const have = seen.length ? seen.map((l) => JSON.stringify(l)).join(', ') : 'none';
  throw new UsageError(`no token with ${want} in ${mod.path} (tokens present: ${have}); set HSM_PKCS11_TOKEN or the URI's token= to one of them`);
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

/**
 * A logged-in view of one token: a read-write session, the slot, and the objects created through it.
 * Suites open further sessions with openSession(); they are closed by close().
 */
export class Token {
  readonly lib: pkcs11.PKCS11;
  readonly session: Handle;
  private readonly extraSessions: Handle[] = [];
  private readonly created = new Map<string, Handle>();
  private loggedIn = false;
  private mechanismList?: Set<number>;

  constructor(readonly module: LoadedModule, readonly slot: Handle, private readonly pin: string) {
    this.lib = module.lib;
    this.session = this.lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  }

  static open(modulePath: string, selector: TokenSelector, pin: string): Token {
    const mod = loadModule(modulePath);
    try {
      const slot = findSlot(mod, selector);
      return new Token(mod, slot, pin);
    } catch (err) {
      mod.release();
      throw err;
    }
  }

  /** Log in as USER. A wrong PIN becomes a UsageError: it is the operator's input that is wrong. */
  login(): void {
    if (this.loggedIn) return;
    try {
      this.lib.C_Login(this.session, pkcs11.CKU_USER, this.pin);
    } catch (err) {
      const code = ckrOf(err);
      if (code === pkcs11.CKR_USER_ALREADY_LOGGED_IN) { this.loggedIn = true; return; }
      if (code === pkcs11.CKR_PIN_INCORRECT || code === pkcs11.CKR_PIN_LEN_RANGE || code === pkcs11.CKR_PIN_INVALID) {
        throw new UsageError(`the PIN was rejected by the token (${ckrName(code)}); check the PIN source (HSM_PKCS11_PIN or pin-source) and the token's retry counter`);
      }
      if (code === pkcs11.CKR_PIN_LOCKED) throw new UsageError('the token reports its user PIN as locked (CKR_PIN_LOCKED); unblock it with the SO PIN before running the harness');
      throw err;
    }
    this.loggedIn = true;
  }

  openSession(readWrite = true): Handle {
    const flags = pkcs11.CKF_SERIAL_SESSION | (readWrite ? pkcs11.CKF_RW_SESSION : 0);
    const s = this.lib.C_OpenSession(this.slot, flags);
    this.extraSessions.push(s);
    return s;
  }

  closeSession(s: Handle): void {
    const i = this.extraSessions.findIndex((x) => x.equals(s));
    if (i >= 0) this.extraSessions.splice(i, 1);
    try { this.lib.C_CloseSession(s); } catch { /* already closed */ }
  }

  /** Remember an object so that cleanup() destroys it. */
  track(...handles: Handle[]): void {
    for (const h of handles) this.created.set(h.toString('hex'), h);
  }

  /** Destroy one object now (and stop tracking it). */
  destroy(handle: Handle): void {
    this.created.delete(handle.toString('hex'));
    this.lib.C_DestroyObject(this.session, handle);
  }

  get trackedCount(): number {
    return this.created.size;
  }

  /** Destroy every tracked object. Returns the ones that could not be destroyed, with their CKR. */
  cleanup(): { handle: string; error: string }[] {
    const failures: { handle: string; error: string }[] = [];
    for (const [key, h] of this.created) {
      try { this.lib.C_DestroyObject(this.session, h); } catch (err) {
        const code = ckrOf(err);
        if (code !== pkcs11.CKR_OBJECT_HANDLE_INVALID) failures.push({ handle: key, error: code !== undefined ? ckrName(code) : String(err) });
      }
    }
    this.created.clear();
    return failures;
  }

  /** Collect all matching handles first, then finish the search, before any other call (pkcs11.md §8). */
  find(template: Template, session: Handle = this.session): Handle[] {
    this.lib.C_FindObjectsInit(session, template);
    const out: Handle[] = [];
    try {
      for (;;) {
        const batch = this.lib.C_FindObjects(session, 64);
        if (batch.length === 0) break;
        out.push(...batch);
      }
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
    return out;
  }

  /** Every object the logged-in user can see. */
  countObjects(): number {
    return this.find([]).length;
  }

  /** One attribute, raw. Throws the token's Pkcs11Error (e.g. CKR_ATTRIBUTE_SENSITIVE) as it is. */
  attr(handle: Handle, type: number, session: Handle = this.session): Buffer {
    const [a] = this.lib.C_GetAttributeValue(session, handle, [{ type }]);
    return (a.value as Buffer) ?? Buffer.alloc(0);
  }

  attrUlong(handle: Handle, type: number): number {
    return readUlong(this.attr(handle, type));
  }

  attrBool(handle: Handle, type: number): boolean {
    return readBool(this.attr(handle, type));
  }

  /**
   * The mechanisms the token lists, read once: every suite asks, and on a network HSM or a smartcard each
   * C_GetMechanismList is a round trip. The list is fixed for the token while the harness holds it.
   */
  offeredMechanisms(): ReadonlySet<number> {
    this.mechanismList ??= new Set(this.lib.C_GetMechanismList(this.slot));
    return this.mechanismList;
  }

  tokenInfo(): pkcs11.TokenInfo {
    return this.lib.C_GetTokenInfo(this.slot);
  }

  close(): void {
    for (const s of [...this.extraSessions]) this.closeSession(s);
    try { if (this.loggedIn) this.lib.C_Logout(this.session); } catch { /* session gone */ }
    try { this.lib.C_CloseSession(this.session); } catch { /* ignore */ }
    this.loggedIn = false;
    this.module.release();
  }
}
