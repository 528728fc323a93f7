/**
 * The one PKCS#11 session helper. Everything that talks to a token goes through here:
 * - one pkcs11js instance per module per process, initialised with CKF_OS_LOCKING_OK (PKCS#11 3.0 §5.4.1; docs/pkcs11-notes.md §1);
 * - tokens are selected by label, serial or slot id, never by slot position;
 * - attributes are read one per call, because C_GetAttributeValue is all-or-nothing in pkcs11js;
 * - objects are created through Token methods only: each gets a run-unique CKA_ID and a prefixed label, is
 *   journalled before the call, tracked after it, destroyed at the end, and the object count is checked.
 */
// pkcs11js is CommonJS; only the default import carries all of its constants at run time.
import pkcs11 from 'pkcs11js';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.js';
import { ckrName } from './constants.js';
import { ID_HEAD_BYTES, LABEL_PREFIX } from './marks.js';

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

function describeCkr(err: unknown): string {
  const code = ckrOf(err);
  return code !== undefined ? ckrName(code) : err instanceof Error ? err.message : String(err);
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
    if (sel.slotDescriptionIncludes !== undefined && !trimPadded(mod.lib.C_GetSlotInfo(slot).slotDescription).includes(sel.slotDescriptionIncludes)) continue;
    return slot;
  }
  const want =
    sel.label !== undefined
      ? `label "${sel.label}"`
      : sel.serial !== undefined
        ? `serial "${sel.serial}"`
        : sel.slotId !== undefined
          ? `slot id ${sel.slotId}`
          : sel.labelIncludes !== undefined
            ? `a label containing "${sel.labelIncludes}"`
            : sel.slotDescriptionIncludes !== undefined
              ? `a reader named like "${sel.slotDescriptionIncludes}"`
              : 'any token';
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
 * Every object the harness creates carries a recognisable label (this prefix) and a CKA_ID that starts with
 * the run's random prefix followed by a counter, so that a leftover can be proven ours: cleanup destroys a
 * found object only when both its CKA_ID (exactly as journalled) and its label prefix match.
 */
export { ID_HEAD_BYTES, LABEL_PREFIX } from './marks.js';

/** Where a token lives, as the journal records it (no PIN: cleanup reads that from the same environment as the run). */
export interface TokenIdentity {
  modulePath: string;
  label: string;
  serial: string;
}

/** Told about every object before it is created and after it is proven gone: the run's journal listens. */
export interface ObjectListener {
  creating(token: TokenIdentity, id: string, label: string): void;
  gone(token: TokenIdentity, id: string): void;
  /** A program the harness does not control may now create objects labelled `prefix…` (Token.expectLabelled). */
  labelled?(token: TokenIdentity, prefix: string): void;
  labelledGone?(token: TokenIdentity, prefix: string): void;
}

/** Session states of a logged-in user (PKCS#11 v2.40 pkcs11t.h CKS_*). */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** Tokens open in this process, so that a worker whose parent vanished can clean them all up. */
const openTokens = new Set<Token>();
export function liveTokens(): Token[] {
  return [...openTokens];
}

const run: { prefix: Buffer; counter: number; listener?: ObjectListener } = { prefix: randomBytes(8), counter: 0 };

/** The run's CKA_ID prefix (8 bytes) and the journal listener; the worker sets them from the parent's request. */
export function setRunIdentity(prefix: Buffer, listener?: ObjectListener): void {
  if (prefix.length !== 8) throw new Error('the run prefix is 8 bytes');
  run.prefix = Buffer.from(prefix);
  run.counter = 0;
  run.listener = listener;
}

export function runPrefix(): Buffer {
  return run.prefix;
}

/** The label prefix for objects a signer named `name` creates in this run (Token.expectLabelled). */
export function runLabelPrefix(name: string): string {
  return `${LABEL_PREFIX}${run.prefix.toString('hex')}-${name}-`;
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

/** An object this Token created: its CKA_ID and label, and the handles it is known by (none while pending). */
interface Owned {
  id: Buffer;
  label: string;
  handles: Map<string, Handle>;
  destroyable: boolean;
}

export interface CleanupFailure {
  handle: string;
  id?: string;
  error: string;
}

function attrValue(template: Template, type: number): unknown {
  return template.find((a) => a.type === type)?.value;
}

/**
 * A logged-in view of one token: a read-write session, the slot, and the objects created through it.
 * Objects are created only through the methods below, which give each one a run-unique CKA_ID and a
 * prefixed label, tell the journal before the call, and track the handles. destroy() refuses handles this
 * Token did not create. Suites open further sessions with openSession(); they are closed by close().
 */
export class Token {
  lib: pkcs11.PKCS11;
  private currentSession: Handle;
  private readonly extraSessions: Handle[] = [];
  private readonly owned = new Map<string, Owned>();
  private loggedIn = false;
  private mechanismList?: Set<number>;
  readonly identity: TokenIdentity;
  /** How often cleanup had to reopen a lost session (reported by the cleanup case). */
  reconnects = 0;

  constructor(
    public module: LoadedModule,
    public slot: Handle,
    private readonly pin: string,
    private readonly selector?: TokenSelector,
  ) {
    this.lib = module.lib;
    const info = this.lib.C_GetTokenInfo(slot);
    this.identity = { modulePath: module.path, label: trimPadded(info.label), serial: trimPadded(info.serialNumber) };
    this.currentSession = this.lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    openTokens.add(this);
  }

  /** The main read-write session (a new one after a lost session was reopened). */
  get session(): Handle {
    return this.currentSession;
  }

  static open(modulePath: string, selector: TokenSelector, pin: string): Token {
    const mod = loadModule(modulePath);
    try {
      const slot = findSlot(mod, selector);
      return new Token(mod, slot, pin, selector);
    } catch (err) {
      mod.release();
      throw err;
    }
  }

  /**
   * Finalize the module and start it again: a new session, a new login, and the module's first view of the
   * token (OpenSC caches what it generated in this process; a fresh C_Initialize reads the card).
   */
  reopen(): void {
    const restore = this.release();
    restore();
  }

  /**
   * Give the token to an outside process (sc-hsm-tool, pkcs15-tool, pkcs11-tool, ods-hsmspeed): close every
   * session and C_Finalize, so that no PC/SC transaction or login of ours can block it; run fn; then reopen.
   */
  async handOver<T>(fn: () => Promise<T>): Promise<T> {
    const restore = this.release();
    try {
      return await fn();
    } finally {
      restore();
    }
  }

  /**
   * Close and finalize; the returned function opens again. Handles do not survive C_Finalize, so each
   * tracked object is found again by its run CKA_ID (and class) and its handle Buffer is rewritten in place:
   * a suite holding that Buffer keeps pointing at the same object. Objects an outside tool made with a
   * tracked CKA_ID and the run's label (a key it restored) are tracked too; a handle whose object is gone
   * becomes CK_INVALID_HANDLE, so a stale handle can never reach another object.
   */
  private release(): () => void {
    if (!this.selector) throw new Error('reopen needs a Token made by Token.open');
    const known: { o: Owned; h: Handle; cls: number }[] = [];
    for (const o of this.owned.values()) {
      if (!o.destroyable) throw new Error("a tracked object without the run's CKA_ID and label could not be found again after C_Finalize");
      for (const h of o.handles.values()) known.push({ o, h, cls: this.attrUlong(h, pkcs11.CKA_CLASS) });
    }
    const modulePath = this.module.path;
    const wasLoggedIn = this.loggedIn;
    this.close();
    return () => {
      this.module = loadModule(modulePath);
      this.lib = this.module.lib;
      openTokens.add(this);
      this.mechanismList = undefined;
      this.slot = findSlot(this.module, this.selector!);
      this.currentSession = this.lib.C_OpenSession(this.slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
      if (wasLoggedIn) this.login();
      for (const o of this.owned.values()) {
        o.handles.clear();
        const found = this.find([{ type: pkcs11.CKA_ID, value: o.id }]).filter((h) => this.carriesMarks(h, o.id));
        const claimed = new Set<string>();
        for (const k of known.filter((x) => x.o === o)) {
          const match = found.find((m) => !claimed.has(m.toString('hex')) && this.attrUlong(m, pkcs11.CKA_CLASS) === k.cls);
          if (match) {
            claimed.add(match.toString('hex'));
            k.h.set(match);
            o.handles.set(k.h.toString('hex'), k.h);
          } else k.h.fill(0);
        }
        for (const m of found) if (!claimed.has(m.toString('hex'))) o.handles.set(m.toString('hex'), m);
      }
    };
  }

  /** Log in as USER. A wrong PIN becomes a UsageError: it is the operator's input that is wrong. */
  login(): void {
    if (this.loggedIn) return;
    try {
      this.lib.C_Login(this.session, pkcs11.CKU_USER, this.pin);
    } catch (err) {
      const code = ckrOf(err);
      if (code === pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
        this.loggedIn = true;
        return;
      }
      if (code === pkcs11.CKR_PIN_INCORRECT || code === pkcs11.CKR_PIN_LEN_RANGE || code === pkcs11.CKR_PIN_INVALID) {
        throw new UsageError(
          `the PIN was rejected by the token (${ckrName(code)}); check the PIN source (HSM_PKCS11_PIN or pin-source) and the token's retry counter`,
        );
      }
      if (code === pkcs11.CKR_PIN_LOCKED)
        throw new UsageError('the token reports its user PIN as locked (CKR_PIN_LOCKED); unblock it with the SO PIN before running the harness');
      throw err;
    }
    this.loggedIn = true;
  }

  /**
   * After a lost session or login: close what is left, find the slot again (a re-inserted card may get a new
   * one), open a fresh read-write session and log in.
   */
  reconnect(): void {
    for (const s of [...this.extraSessions, this.currentSession]) {
      try {
        this.lib.C_CloseSession(s);
      } catch {
        /* already gone */
      }
    }
    this.extraSessions.length = 0;
    if (this.selector) this.slot = findSlot(this.module, this.selector);
    this.currentSession = this.lib.C_OpenSession(this.slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    this.loggedIn = false;
    this.login();
    this.reconnects++;
  }

  /**
   * Between cases: is the main session still open and logged in (C_GetSessionInfo)? When not, open a new one and
   * log in again, and say what had been lost; undefined when nothing was. Throws when it cannot be re-established.
   */
  restoreSession(): string | undefined {
    const now = this.sessionState();
    if (now.state === 'in' || now.state === 'unknown') return undefined;
    const lost = now.state === 'out' ? `the login was lost (session state ${now.code})` : `the session was lost (${now.why})`;
    this.reconnect();
    return lost;
  }

  /**
   * The main session as the token sees it (C_GetSessionInfo): logged in, logged out, gone, or unknown (a module
   * that does not implement C_GetSessionInfo, or another error: nothing is concluded from it).
   */
  private sessionState(): { state: 'in' } | { state: 'out'; code: number } | { state: 'lost'; why: string } | { state: 'unknown' } {
    try {
      const { state } = this.lib.C_GetSessionInfo(this.session);
      return state === CKS_RO_USER_FUNCTIONS || state === CKS_RW_USER_FUNCTIONS ? { state: 'in' } : { state: 'out', code: state };
    } catch (err) {
      return isSessionLost(err) ? { state: 'lost', why: describeCkr(err) } : { state: 'unknown' };
    }
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
    try {
      this.lib.C_CloseSession(s);
    } catch {
      /* already closed */
    }
  }

  /** A fresh CKA_ID: run prefix (8 bytes) ‖ counter (4 bytes) ‖ random bytes up to `length`. */
  newId(length = 20): Buffer {
    if (length < ID_HEAD_BYTES) throw new Error(`a harness CKA_ID needs at least ${ID_HEAD_BYTES} bytes`);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(++run.counter);
    return Buffer.concat([run.prefix, counter, randomBytes(length - ID_HEAD_BYTES)]);
  }

  /** Whether a CKA_ID was allocated by this run. */
  static isRunId(id: Buffer): boolean {
    return id.length >= ID_HEAD_BYTES && id.subarray(0, 8).equals(run.prefix);
  }

  /**
   * Give a template the run's marks: a CKA_ID of this run (allocated when missing; one given must come from
   * newId) and a label with LABEL_PREFIX. Registers the ID as pending in the journal before any call.
   */
  private prepare(template: Template, defaultId?: Buffer): { template: Template; owned: Owned } {
    let id = attrValue(template, pkcs11.CKA_ID) as Buffer | undefined;
    if (id === undefined) id = defaultId ?? this.newId();
    if (!Token.isRunId(id)) throw new Error('refusing to create an object whose CKA_ID was not allocated by Token.newId (a leftover could not be proven ours)');
    const given = attrValue(template, pkcs11.CKA_LABEL);
    const text = given === undefined ? '' : Buffer.isBuffer(given) ? given.toString('utf8') : String(given);
    const label = text.startsWith(LABEL_PREFIX) ? text : `${LABEL_PREFIX}${text || id.subarray(8, ID_HEAD_BYTES).toString('hex')}`;
    const rest = template.filter((a) => a.type !== pkcs11.CKA_ID && a.type !== pkcs11.CKA_LABEL);
    const owned = this.register(id, label, true);
    return { template: [...rest, { type: pkcs11.CKA_LABEL, value: label }, { type: pkcs11.CKA_ID, value: id }], owned };
  }

  private register(id: Buffer, label: string, destroyable: boolean): Owned {
    const key = id.toString('hex');
    let o = this.owned.get(key);
    if (!o) {
      o = { id, label, handles: new Map(), destroyable };
      this.owned.set(key, o);
      run.listener?.creating(this.identity, key, label);
    }
    return o;
  }

  private adopt(o: Owned, ...handles: Handle[]): void {
    for (const h of handles) o.handles.set(h.toString('hex'), h);
  }

  /** C_GenerateKeyPairAsync (timers keep running); both halves get the same run CKA_ID. */
  async generateKeyPair(
    mechanism: pkcs11.Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
    session: Handle = this.session,
  ): Promise<{ publicKey: Handle; privateKey: Handle; id: Buffer; label: string }> {
    const priv = this.prepare(privateTemplate);
    const pub = this.prepare(publicTemplate, priv.owned.id);
    if (pub.owned !== priv.owned) throw new Error('both halves of a key pair carry the same CKA_ID');
    const keys = await this.lib.C_GenerateKeyPairAsync(session, mechanism, pub.template, priv.template);
    this.adopt(priv.owned, keys.publicKey, keys.privateKey);
    return { ...keys, id: priv.owned.id, label: priv.owned.label };
  }

  /** C_GenerateKey (secret keys, e.g. a wrapping key). */
  generateKey(mechanism: pkcs11.Mechanism, template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.prepare(template);
    const h = this.lib.C_GenerateKey(session, mechanism, t);
    this.adopt(owned, h);
    return h;
  }

  /** C_CreateObject (importing a key, as Knot does). */
  createObject(template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.prepare(template);
    const h = this.lib.C_CreateObject(session, t);
    this.adopt(owned, h);
    return h;
  }

  /** C_UnwrapKey: the restored key is a new object of this run. */
  unwrapKey(mechanism: pkcs11.Mechanism, unwrappingKey: Handle, wrapped: Buffer, template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.prepare(template);
    const h = this.lib.C_UnwrapKey(session, mechanism, unwrappingKey, wrapped, t);
    this.adopt(owned, h);
    return h;
  }

  /** C_CopyObject: the copy gets its own run CKA_ID and label (the template overrides the original's). */
  copyObject(handle: Handle, template: Template = [], session: Handle = this.session): Handle {
    const { template: t, owned } = this.prepare(template);
    const h = this.lib.C_CopyObject(session, handle, t);
    this.adopt(owned, h);
    return h;
  }

  /**
   * Adopt objects made by a raw lib.C_* call (kept for cases that test raw behaviour). Their CKA_ID and
   * label are read now and journalled; cleanup finds them again by CKA_ID only when both carry the run's marks.
   */
  track(...handles: Handle[]): void {
    for (const h of handles) {
      let id: Buffer;
      let label = '';
      try {
        id = this.attr(h, pkcs11.CKA_ID);
        label = this.attr(h, pkcs11.CKA_LABEL).toString('utf8');
      } catch {
        id = Buffer.alloc(0);
      }
      // An object without a readable CKA_ID is tracked by handle alone, under a key no CKA_ID can have.
      const key = id.length ? id : Buffer.from(`handle:${h.toString('hex')}`);
      const o = this.register(key, label, id.length > 0 && label.startsWith(LABEL_PREFIX));
      this.adopt(o, h);
    }
  }

  private ownerOf(handle: Handle): Owned | undefined {
    const hex = handle.toString('hex');
    for (const o of this.owned.values()) if (o.handles.has(hex)) return o;
    return undefined;
  }

  /** Whether a handle carries exactly this run CKA_ID and the harness label prefix. */
  private carriesMarks(handle: Handle, id: Buffer): boolean {
    try {
      return this.attr(handle, pkcs11.CKA_ID).equals(id) && this.attr(handle, pkcs11.CKA_LABEL).toString('utf8').startsWith(LABEL_PREFIX);
    } catch {
      return false;
    }
  }

  /**
   * Destroy one object this Token created. A handle it did not create is refused. Before the call the
   * handle's CKA_ID is read back (a handle that went stale after a logout may name another object now).
   * The object stops being tracked only after C_DestroyObject succeeded.
   */
  destroy(handle: Handle): void {
    const o = this.ownerOf(handle);
    if (!o) throw new Error(`refusing to destroy object ${handle.toString('hex')}: this run did not create it`);
    if (o.destroyable) {
      const id = this.attr(handle, pkcs11.CKA_ID);
      if (!id.equals(o.id)) throw new Error(`object ${handle.toString('hex')} no longer carries the CKA_ID it was created with; not destroyed`);
    }
    this.lib.C_DestroyObject(this.session, handle);
    o.handles.delete(handle.toString('hex'));
    if (o.handles.size === 0) this.forget(o);
  }

  private forget(o: Owned): void {
    this.owned.delete(o.id.toString('hex'));
    run.listener?.gone(this.identity, o.id.toString('hex'));
  }

  /**
   * Destroy the objects of one CKA_ID (a key pair) now. Whatever cannot be destroyed by handle (a stale handle
   * after C_Logout) is found again by CKA_ID; anything still left stays tracked for cleanup(), which reports it.
   */
  destroyPair(pair: { publicKey: Handle; privateKey: Handle } | undefined): void {
    if (!pair) return;
    const o = this.ownerOf(pair.privateKey) ?? this.ownerOf(pair.publicKey);
    if (!o) return;
    for (const h of [pair.privateKey, pair.publicKey]) {
      try {
        if (o.handles.has(h.toString('hex'))) this.destroy(h);
      } catch {
        /* below */
      }
    }
    if (this.owned.has(o.id.toString('hex'))) {
      try {
        this.purge(o);
      } catch {
        /* left tracked */
      }
    }
  }

  /** Objects still held (handles), for suites that must not log out while others hold private handles. */
  get trackedCount(): number {
    let n = 0;
    for (const o of this.owned.values()) n += o.handles.size;
    return n;
  }

  /** CKA_IDs (hex) still tracked: created or possibly created, not yet proven gone. */
  trackedIds(): string[] {
    return [...this.owned.keys()];
  }

  /**
   * Find the objects of one CKA_ID again and destroy those that carry the run's marks, then search once more:
   * the entry is forgotten only when nothing with its marks is left. Handles the find returns that do not
   * carry both marks are never touched (a module may ignore the find template).
   */
  private purge(o: Owned): void {
    if (!o.destroyable) throw new Error('no run CKA_ID and label to find it by');
    // Logged out, a find does not see private objects: "none left" would be a lie (it stays tracked for cleanup).
    const now = this.sessionState().state;
    if (now === 'out' || now === 'lost') throw new Error('not logged in: private objects are out of sight');
    this.removeLeftover(o.id);
    o.handles.clear();
    this.forget(o);
  }

  /**
   * A label prefix for objects that a program the harness does not control (a DNSSEC signer) creates on this
   * token: the harness prefix, the run's CKA_ID prefix in hex and a name, journalled before the program runs, so
   * that cleanup after a kill finds its objects by label (removeLabelled) and nothing else.
   */
  expectLabelled(prefix: string): void {
    if (!prefix.startsWith(`${LABEL_PREFIX}${run.prefix.toString('hex')}-`)) throw new Error(`${prefix} is not a label prefix of this run (runLabelPrefix)`);
    run.listener?.labelled?.(this.identity, prefix);
  }

  /** The objects labelled `prefix…` are gone (the caller checked): the journal can forget the prefix. */
  labelledGone(prefix: string): void {
    if (this.find([]).some((h) => this.labelOf(h).startsWith(prefix))) throw new Error(`objects labelled ${prefix}… are still on the token`);
    run.listener?.labelledGone?.(this.identity, prefix);
  }

  /**
   * Destroy every object whose label starts with a run label prefix (journalled by expectLabelled), and check that
   * none is left. Used for a killed run's signer objects. Returns how many were destroyed.
   */
  removeLabelled(prefix: string): number {
    if (!/^hsm-harness-[0-9a-f]{16}-[a-z0-9]+-$/.test(prefix)) throw new Error(`${JSON.stringify(prefix)} is not a run label prefix`);
    let n = 0;
    for (const h of this.find([]).filter((x) => this.labelOf(x).startsWith(prefix))) {
      this.lib.C_DestroyObject(this.session, h);
      n++;
    }
    const left = this.find([]).filter((x) => this.labelOf(x).startsWith(prefix));
    if (left.length) throw new Error(`${left.length} object(s) labelled ${prefix}… are still on the token`);
    return n;
  }

  private labelOf(h: Handle): string {
    try {
      return this.attr(h, pkcs11.CKA_LABEL).toString('utf8');
    } catch {
      return '';
    }
  }

  /**
   * Destroy the objects that carry exactly this CKA_ID and the harness label prefix, and check that none is
   * left. Used for journalled leftovers of a killed run. Returns how many were destroyed.
   */
  removeLeftover(id: Buffer): number {
    let n = 0;
    for (const h of this.find([{ type: pkcs11.CKA_ID, value: id }])) {
      if (this.carriesMarks(h, id)) {
        this.lib.C_DestroyObject(this.session, h);
        n++;
      }
    }
    const left = this.find([{ type: pkcs11.CKA_ID, value: id }]).filter((h) => this.carriesMarks(h, id));
    if (left.length) throw new Error(`${left.length} object(s) with CKA_ID ${id.toString('hex')} are still on the token`);
    return n;
  }

  /**
   * Destroy every tracked object. By handle first; when the session or login was lost on the way (OpenSC
   * drops sessions when another process uses the card), a new session is opened and the user logged in
   * again; then whatever is left (or was only pending) is found by its CKA_ID and destroyed if it carries
   * the run's marks. Returns what could not be destroyed, with the reason.
   */
  cleanup(): CleanupFailure[] {
    let lost = false;
    for (const o of [...this.owned.values()]) {
      for (const h of [...o.handles.values()]) {
        if (lost) break;
        try {
          this.destroy(h);
        } catch (err) {
          if (isSessionLost(err)) lost = true;
        }
      }
    }
    if (!lost && this.owned.size > 0) {
      // A lost login shows up only on the next call that needs it: ask the token.
      const now = this.sessionState().state;
      if (now === 'out' || now === 'lost') lost = true;
    }
    const failures: CleanupFailure[] = [];
    if (lost) {
      try {
        this.reconnect();
      } catch (err) {
        const error = `session lost and could not be reopened: ${describeCkr(err)}`;
        for (const o of this.owned.values()) failures.push({ handle: [...o.handles.keys()].join(',') || '(pending)', id: o.id.toString('hex'), error });
        return failures;
      }
    }
    for (const o of [...this.owned.values()]) {
      try {
        this.purge(o);
      } catch (err) {
        if (!o.destroyable && o.handles.size === 0) {
          this.owned.delete(o.id.toString('hex'));
          continue;
        }
        failures.push({ handle: [...o.handles.keys()].join(',') || '(pending)', id: o.id.toString('hex'), error: describeCkr(err) });
      }
    }
    return failures;
  }

  /** Collect all matching handles first, then finish the search, before any other call (PKCS#11 3.0 §5.7.7-5.7.9; pkcs11-provider#148). */
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
    openTokens.delete(this);
    for (const s of [...this.extraSessions]) this.closeSession(s);
    try {
      if (this.loggedIn) this.lib.C_Logout(this.session);
    } catch {
      /* session gone */
    }
    try {
      this.lib.C_CloseSession(this.session);
    } catch {
      /* ignore */
    }
    this.loggedIn = false;
    this.module.release();
  }
}
