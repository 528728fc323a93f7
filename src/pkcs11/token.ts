/**
 * The one PKCS#11 session helper: a logged-in view of one token (Token), through which everything that talks to
 * a token goes: sessions, login, and the operations. Objects are created through Token methods only; what they
 * create is kept by the token's object ledger (./objects.ts, Token.objects), which destroys it at the end.
 * Attributes are read one per call, because C_GetAttributeValue is all-or-nothing in pkcs11js. Beside it: module
 * loading (./module.ts), return codes (./ckr.ts), slot choice (./slot.ts).
 */
import { UsageError } from '../errors.js';
import { ckrName } from './constants.js';
import { describeCkr, ckrOf, isSessionLost } from './ckr.js';
import { type Handle, type LoadedModule, type Template, loadModule, pkcs11, readBool, readUlong, trimPadded } from './module.js';
import { type TokenSelector, findSlot } from './slot.js';
import { type TokenIdentity, newRunId } from './run-identity.js';
import { TokenObjects } from './objects.js';

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

/**
 * A logged-in view of one token: a read-write session and the slot. Objects are created only through the
 * methods below, which have the object ledger (`objects`) mark each one with a run-unique CKA_ID and a prefixed
 * label and record it before the call. Suites open further sessions with openSession(); close() closes them.
 */
export class Token {
  lib: pkcs11.PKCS11;
  private currentSession: Handle;
  private readonly extraSessions: Handle[] = [];
  private loggedIn = false;
  private mechanismList?: Set<number>;
  readonly identity: TokenIdentity;
  /** What this Token created: destroy(), destroyPair(), cleanup() and the signers' label prefixes are there. */
  readonly objects: TokenObjects;
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
    this.objects = new TokenObjects(this);
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

  /** Close and finalize; the returned function opens again, and the object ledger finds its objects again. */
  private release(logIn = false): () => void {
    if (!this.selector) throw new Error('reopen needs a Token made by Token.open');
    const refind = this.objects.beforeFinalize();
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
      refind();
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
    if (this.selector && this.objects.allRefindable()) {
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
  sessionState(): { state: 'in' } | { state: 'out'; code: number } | { state: 'lost'; why: string } | { state: 'unknown' } {
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

  /** C_GenerateKeyPairAsync (timers keep running); both halves get the same run CKA_ID. */
  async generateKeyPair(
    mechanism: pkcs11.Mechanism,
    publicTemplate: Template,
    privateTemplate: Template,
    session: Handle = this.session,
  ): Promise<{ publicKey: Handle; privateKey: Handle; id: Buffer; label: string }> {
    const priv = this.objects.mark(privateTemplate);
    const pub = this.objects.mark(publicTemplate, priv.owned.id);
    if (pub.owned !== priv.owned) throw new Error('both halves of a key pair carry the same CKA_ID');
    const keys = await this.lib.C_GenerateKeyPairAsync(session, mechanism, pub.template, priv.template);
    this.objects.adopt(priv.owned, keys.publicKey, keys.privateKey);
    return { ...keys, id: priv.owned.id, label: priv.owned.label };
  }

  /** C_GenerateKey (secret keys, e.g. a wrapping key). */
  generateKey(mechanism: pkcs11.Mechanism, template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.objects.mark(template);
    const h = this.lib.C_GenerateKey(session, mechanism, t);
    this.objects.adopt(owned, h);
    return h;
  }

  /** C_CreateObject (importing a key, as Knot does). */
  createObject(template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.objects.mark(template);
    const h = this.lib.C_CreateObject(session, t);
    this.objects.adopt(owned, h);
    return h;
  }

  /** C_UnwrapKey: the restored key is a new object of this run. */
  unwrapKey(mechanism: pkcs11.Mechanism, unwrappingKey: Handle, wrapped: Buffer, template: Template, session: Handle = this.session): Handle {
    const { template: t, owned } = this.objects.mark(template);
    const h = this.lib.C_UnwrapKey(session, mechanism, unwrappingKey, wrapped, t);
    this.objects.adopt(owned, h);
    return h;
  }

  /** C_CopyObject: the copy gets its own run CKA_ID and label (the template overrides the original's). */
  copyObject(handle: Handle, template: Template = [], session: Handle = this.session): Handle {
    const { template: t, owned } = this.objects.mark(template);
    const h = this.lib.C_CopyObject(session, handle, t);
    this.objects.adopt(owned, h);
    return h;
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
