/**
 * The one PKCS#11 session helper: a logged-in view of one token (Token), through which everything that talks to
 * a token goes. Objects are created through Token methods only: each gets a run-unique CKA_ID and a prefixed
 * label (./run-identity.ts), is journalled before the call, tracked after it, destroyed at the end, and the
 * object count is checked. Attributes are read one per call, because C_GetAttributeValue is all-or-nothing in
 * pkcs11js. Beside it: module loading (./module.ts), return codes (./ckr.ts), slot choice (./slot.ts).
 */
import { UsageError } from '../errors.js';
import { ckrName } from './constants.js';
import { describeCkr, ckrOf, isSessionLost } from './ckr.js';
import { type Handle, type LoadedModule, type Template, loadModule, pkcs11, readBool, readUlong, trimPadded } from './module.js';
import { type TokenSelector, findSlot } from './slot.js';
import { type TokenIdentity, isRunId, newRunId, objectListener, runPrefix } from './run-identity.js';
import { ID_HEAD_BYTES, LABEL_PREFIX } from './marks.js';

/** How long handOver waits after the outside process before taking the token back (pcscd's reset of a dead client's card). */
const HANDOVER_SETTLE_MS = 1000;

/** Session states of a logged-in user (PKCS#11 v2.40 pkcs11t.h CKS_*). */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** Tokens open in this process, so that a worker whose parent vanished can clean them all up. */
const openTokens = new Set<Token>();
export function liveTokens(): Token[] {
  return [...openTokens];
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
  /** The CKA_CLASS of each tracked handle, read when it was adopted (a handle is rewritten in place when found again). */
  private readonly classes = new WeakMap<Handle, number>();
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
      // A process that exits holding the card without C_Finalize (ldns-signzone through libp11, among others) has the
      // card reset by pcscd once it notices (pcsc-lite MSGRemoveContext: SCardDisconnect with SCARD_RESET_CARD). A
      // session opened before that reset is lost, so wait for it, then check the session and reconnect if it is gone.
      await new Promise((resolve) => setTimeout(resolve, HANDOVER_SETTLE_MS));
      restore();
      this.restoreSession();
    }
  }

  /**
   * Close and finalize; the returned function opens again. Handles do not survive C_Finalize, so each
   * tracked object is found again by its run CKA_ID (and class) and its handle Buffer is rewritten in place:
   * a suite holding that Buffer keeps pointing at the same object. Objects an outside tool made with a
   * tracked CKA_ID and the run's label (a key it restored) are tracked too; a handle whose object is gone
   * becomes CK_INVALID_HANDLE, so a stale handle can never reach another object.
   */
  private release(logIn = false): () => void {
    if (!this.selector) throw new Error('reopen needs a Token made by Token.open');
    const known: { o: Owned; h: Handle; cls: number }[] = [];
    for (const o of this.owned.values()) {
      if (!o.destroyable) throw new Error("a tracked object without the run's CKA_ID and label could not be found again after C_Finalize");
      // The class recorded when the object was adopted: after a card reset the handle can no longer be read.
      for (const h of o.handles.values()) known.push({ o, h, cls: this.classes.get(h) ?? this.attrUlong(h, pkcs11.CKA_CLASS) });
    }
    const modulePath = this.module.path;
    const wasLoggedIn = logIn || this.loggedIn;
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
            this.adopt(o, k.h);
          } else k.h.fill(0);
        }
        for (const m of found) if (!claimed.has(m.toString('hex'))) this.adopt(o, m);
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
    if (this.selector && [...this.owned.values()].every((o) => o.destroyable)) {
      // Finalize and start again, finding each tracked object anew: a card reset (OpenSC) invalidates the object
      // handles too, and after one a new session on the old module state can fail (CKR_GENERAL_ERROR).
      this.release(true)();
      this.reconnects++;
      return;
    }
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
    return newRunId(length);
  }

  /** Whether a CKA_ID was allocated by this run. */
  static isRunId(id: Buffer): boolean {
    return isRunId(id);
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
      objectListener()?.creating(this.identity, key, label);
    }
    return o;
  }

  private adopt(o: Owned, ...handles: Handle[]): void {
    for (const h of handles) {
      o.handles.set(h.toString('hex'), h);
      try {
        this.classes.set(h, this.attrUlong(h, pkcs11.CKA_CLASS));
      } catch {
        /* read again when needed */
      }
    }
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
    objectListener()?.gone(this.identity, o.id.toString('hex'));
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
    if (!prefix.startsWith(`${LABEL_PREFIX}${runPrefix().toString('hex')}-`)) throw new Error(`${prefix} is not a label prefix of this run (runLabelPrefix)`);
    objectListener()?.labelled?.(this.identity, prefix);
  }

  /** The objects labelled `prefix…` are gone (the caller checked): the journal can forget the prefix. */
  labelledGone(prefix: string): void {
    if (this.find([]).some((h) => this.labelOf(h).startsWith(prefix))) throw new Error(`objects labelled ${prefix}… are still on the token`);
    objectListener()?.labelledGone?.(this.identity, prefix);
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

  /**
   * A signer that names its keys itself (Knot, BIND, OpenDNSSEC) may now make keys on this token; its own record of
   * them will be in `dir`, a harness temporary directory. Journalled before the signer runs, so that cleanup after a
   * kill reads the record (Signer.keysMadeIn) and removes those keys (removeSignerKeys) before it removes `dir`.
   */
  expectSignerKeys(signer: string, dir: string): void {
    objectListener()?.signerKeys?.(this.identity, signer, dir);
  }

  /** The keys the signer recorded in `dir` are gone (the caller removed what the signer made): the journal can forget it. */
  signerKeysGone(dir: string): void {
    objectListener()?.signerKeysGone?.(this.identity, dir);
  }

  /**
   * Destroy the key objects (private, public, secret) that match a key a signer recorded: CKA_ID and/or CKA_LABEL
   * exactly as the signer wrote them. Used for a killed run's signer keys; checks that none is left. Returns how many
   * were destroyed.
   */
  removeSignerKeys(keys: { id?: string; label?: string }[]): number {
    const matching = (k: { id?: string; label?: string }) => {
      if (k.id === undefined && k.label === undefined) throw new Error('a signer key names neither a CKA_ID nor a label');
      if (k.id !== undefined && !/^([0-9a-f]{2})+$/.test(k.id)) throw new Error(`${JSON.stringify(k.id.slice(0, 80))} is not a CKA_ID in hex`);
      const template: Template = [];
      if (k.id !== undefined) template.push({ type: pkcs11.CKA_ID, value: Buffer.from(k.id, 'hex') });
      if (k.label !== undefined) template.push({ type: pkcs11.CKA_LABEL, value: Buffer.from(k.label, 'utf8') });
      return [pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_SECRET_KEY].flatMap((cls) =>
        this.find([...template, { type: pkcs11.CKA_CLASS, value: cls }]),
      );
    };
    let n = 0;
    for (const k of keys) {
      for (const h of matching(k)) {
        this.lib.C_DestroyObject(this.session, h);
        n++;
      }
    }
    const left = keys.flatMap(matching);
    if (left.length) throw new Error(`${left.length} key object(s) a signer made are still on the token`);
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
