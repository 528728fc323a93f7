/**
 * The objects one Token created (Token.objects): each has a run-unique CKA_ID and a prefixed label
 * (./run-identity.ts), is recorded in the ledger (src/ledger.ts) before the creating call, tracked by its handles
 * after it, and destroyed at the end, found again by its marks when its handles are lost. Handles this ledger did
 * not record are never destroyed. The label prefixes a signer may use on the token are recorded here too.
 */
import { describeCkr, isSessionLost } from './ckr.js';
import { type Handle, type Template, pkcs11 } from './module.js';
import { type TokenIdentity, isRunId, newRunId, runPrefix } from './run-identity.js';
import { ID_HEAD_BYTES, LABEL_PREFIX } from './marks.js';
import { hold, release } from '../ledger.js';

/** An object a Token created: its CKA_ID and label, and the handles it is known by (none while pending). */
export interface OwnedObject {
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

/** What the object ledger asks of its token: calls on the main session, and a new session when it was lost. */
export interface ObjectSession {
  readonly identity: TokenIdentity;
  readonly lib: pkcs11.PKCS11;
  readonly session: Handle;
  find(template: Template): Handle[];
  attr(handle: Handle, type: number): Buffer;
  attrUlong(handle: Handle, type: number): number;
  /** The main session as the token sees it: logged in, logged out, gone, or unknown. */
  sessionState(): { state: 'in' | 'out' | 'lost' | 'unknown' };
  reconnect(): void;
}

function attrValue(template: Template, type: number): unknown {
  return template.find((a) => a.type === type)?.value;
}

export class TokenObjects {
  private readonly owned = new Map<string, OwnedObject>();
  /** The CKA_CLASS of each tracked handle, read when it was adopted (a handle is rewritten in place when found again). */
  private readonly classes = new WeakMap<Handle, number>();

  constructor(private readonly token: ObjectSession) {}

  /**
   * Give a template the run's marks: a CKA_ID of this run (allocated when missing; one given must come from
   * newId) and a label with LABEL_PREFIX. Records the ID in the ledger, as pending, before any call.
   */
  mark(template: Template, defaultId?: Buffer): { template: Template; owned: OwnedObject } {
    let id = attrValue(template, pkcs11.CKA_ID) as Buffer | undefined;
    if (id === undefined) id = defaultId ?? newRunId(20);
    if (!isRunId(id)) throw new Error('refusing to create an object whose CKA_ID was not allocated by Token.newId (a leftover could not be proven ours)');
    const given = attrValue(template, pkcs11.CKA_LABEL);
    const text = given === undefined ? '' : Buffer.isBuffer(given) ? given.toString('utf8') : String(given);
    const label = text.startsWith(LABEL_PREFIX) ? text : `${LABEL_PREFIX}${text || id.subarray(8, ID_HEAD_BYTES).toString('hex')}`;
    const rest = template.filter((a) => a.type !== pkcs11.CKA_ID && a.type !== pkcs11.CKA_LABEL);
    const owned = this.register(id, label, true);
    return { template: [...rest, { type: pkcs11.CKA_LABEL, value: label }, { type: pkcs11.CKA_ID, value: id }], owned };
  }

  private register(id: Buffer, label: string, destroyable: boolean): OwnedObject {
    const key = id.toString('hex');
    let o = this.owned.get(key);
    if (!o) {
      o = { id, label, handles: new Map(), destroyable };
      this.owned.set(key, o);
      hold({ t: 'object', token: this.token.identity, id: key, label });
    }
    return o;
  }

  /** The handles the creating call returned. */
  adopt(o: OwnedObject, ...handles: Handle[]): void {
    for (const h of handles) {
      o.handles.set(h.toString('hex'), h);
      try {
        this.classes.set(h, this.token.attrUlong(h, pkcs11.CKA_CLASS));
      } catch {
        /* read again when needed */
      }
    }
  }

  /**
   * Adopt objects made by a raw lib.C_* call (kept for cases that test raw behaviour). Their CKA_ID and
   * label are read now and recorded; cleanup finds them again by CKA_ID only when both carry the run's marks.
   */
  track(...handles: Handle[]): void {
    for (const h of handles) {
      let id: Buffer;
      let label = '';
      try {
        id = this.token.attr(h, pkcs11.CKA_ID);
        label = this.token.attr(h, pkcs11.CKA_LABEL).toString('utf8');
      } catch {
        id = Buffer.alloc(0);
      }
      // An object without a readable CKA_ID is tracked by handle alone, under a key no CKA_ID can have.
      const key = id.length ? id : Buffer.from(`handle:${h.toString('hex')}`);
      const o = this.register(key, label, id.length > 0 && label.startsWith(LABEL_PREFIX));
      this.adopt(o, h);
    }
  }

  private ownerOf(handle: Handle): OwnedObject | undefined {
    const hex = handle.toString('hex');
    for (const o of this.owned.values()) if (o.handles.has(hex)) return o;
    return undefined;
  }

  /** Whether a handle carries exactly this run CKA_ID and the harness label prefix. */
  private carriesMarks(handle: Handle, id: Buffer): boolean {
    try {
      return this.token.attr(handle, pkcs11.CKA_ID).equals(id) && this.token.attr(handle, pkcs11.CKA_LABEL).toString('utf8').startsWith(LABEL_PREFIX);
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
      const id = this.token.attr(handle, pkcs11.CKA_ID);
      if (!id.equals(o.id)) throw new Error(`object ${handle.toString('hex')} no longer carries the CKA_ID it was created with; not destroyed`);
    }
    this.destroyObject(handle);
    o.handles.delete(handle.toString('hex'));
    if (o.handles.size === 0) this.forget(o);
  }

  /** The one C_DestroyObject: every caller above has checked that the object is this run's. */
  private destroyObject(handle: Handle): void {
    this.token.lib.C_DestroyObject(this.token.session, handle);
  }

  private forget(o: OwnedObject): void {
    this.owned.delete(o.id.toString('hex'));
    release({ t: 'object', token: this.token.identity, id: o.id.toString('hex'), label: o.label });
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
  private purge(o: OwnedObject): void {
    if (!o.destroyable) throw new Error('no run CKA_ID and label to find it by');
    // Logged out, a find does not see private objects: "none left" would be a lie (it stays tracked for cleanup).
    const now = this.token.sessionState().state;
    if (now === 'out' || now === 'lost') throw new Error('not logged in: private objects are out of sight');
    this.removeLeftover(o.id);
    o.handles.clear();
    this.forget(o);
  }

  /**
   * Before C_Finalize: handles do not survive it, so the returned function (called once the token is open again)
   * finds each tracked object again by its run CKA_ID (and class) and rewrites its handle Buffer in place: a suite
   * holding that Buffer keeps pointing at the same object. Objects an outside tool made with a tracked CKA_ID and
   * the run's label (a key it restored) are tracked too; a handle whose object is gone becomes CK_INVALID_HANDLE,
   * so a stale handle can never reach another object.
   */
  /** Whether every tracked object can be found again after C_Finalize (by its run CKA_ID and label). */
  allRefindable(): boolean {
    return [...this.owned.values()].every((o) => o.destroyable);
  }

  beforeFinalize(): () => void {
    const known: { o: OwnedObject; h: Handle; cls: number }[] = [];
    for (const o of this.owned.values()) {
      if (!o.destroyable) throw new Error("a tracked object without the run's CKA_ID and label could not be found again after C_Finalize");
      // The class recorded when the object was adopted: after a card reset the handle can no longer be read.
      for (const h of o.handles.values()) known.push({ o, h, cls: this.classes.get(h) ?? this.token.attrUlong(h, pkcs11.CKA_CLASS) });
    }
    return () => {
      for (const o of this.owned.values()) {
        o.handles.clear();
        const found = this.token.find([{ type: pkcs11.CKA_ID, value: o.id }]).filter((h) => this.carriesMarks(h, o.id));
        const claimed = new Set<string>();
        for (const k of known.filter((x) => x.o === o)) {
          const match = found.find((m) => !claimed.has(m.toString('hex')) && this.token.attrUlong(m, pkcs11.CKA_CLASS) === k.cls);
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

  /**
   * A label prefix for objects that a program the harness does not control (a DNSSEC signer) creates on this
   * token: the harness prefix, the run's CKA_ID prefix in hex and a name, recorded before the program runs, so
   * that cleanup after a kill finds its objects by label (removeLabelled) and nothing else.
   */
  expectLabelled(prefix: string): void {
    if (!prefix.startsWith(`${LABEL_PREFIX}${runPrefix().toString('hex')}-`)) throw new Error(`${prefix} is not a label prefix of this run (runLabelPrefix)`);
    hold({ t: 'labelled', token: this.token.identity, prefix });
  }

  /** The objects labelled `prefix…` are gone (the caller checked): the ledger can forget the prefix. */
  labelledGone(prefix: string): void {
    if (this.token.find([]).some((h) => this.labelOf(h).startsWith(prefix))) throw new Error(`objects labelled ${prefix}… are still on the token`);
    release({ t: 'labelled', token: this.token.identity, prefix });
  }

  /**
   * Destroy every object whose label starts with a run label prefix (recorded by expectLabelled), and check that
   * none is left. Used for a killed run's signer objects. Returns how many were destroyed.
   */
  removeLabelled(prefix: string): number {
    if (!/^hsm-harness-[0-9a-f]{16}-[a-z0-9]+-$/.test(prefix)) throw new Error(`${JSON.stringify(prefix)} is not a run label prefix`);
    let n = 0;
    for (const h of this.token.find([]).filter((x) => this.labelOf(x).startsWith(prefix))) {
      this.destroyObject(h);
      n++;
    }
    const left = this.token.find([]).filter((x) => this.labelOf(x).startsWith(prefix));
    if (left.length) throw new Error(`${left.length} object(s) labelled ${prefix}… are still on the token`);
    return n;
  }

  /**
   * A signer that names its keys itself (Knot, BIND, OpenDNSSEC) may now make keys on this token; its own record of
   * them will be in `dir`, a harness temporary directory. Recorded before the signer runs, so that cleanup after a
   * kill reads the record (Signer.keysMadeIn) and removes those keys (removeSignerKeys) before it removes `dir`.
   */
  expectSignerKeys(signer: string, dir: string): void {
    hold({ t: 'signer-keys', token: this.token.identity, signer, dir });
  }

  /** The keys the signer recorded in `dir` are gone (the caller removed what the signer made): the journal can forget it. */
  signerKeysGone(signer: string, dir: string): void {
    release({ t: 'signer-keys', token: this.token.identity, signer, dir });
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
        this.token.find([...template, { type: pkcs11.CKA_CLASS, value: cls }]),
      );
    };
    let n = 0;
    for (const k of keys) {
      for (const h of matching(k)) {
        this.destroyObject(h);
        n++;
      }
    }
    const left = keys.flatMap(matching);
    if (left.length) throw new Error(`${left.length} key object(s) a signer made are still on the token`);
    return n;
  }

  private labelOf(h: Handle): string {
    try {
      return this.token.attr(h, pkcs11.CKA_LABEL).toString('utf8');
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
    for (const h of this.token.find([{ type: pkcs11.CKA_ID, value: id }])) {
      if (this.carriesMarks(h, id)) {
        this.destroyObject(h);
        n++;
      }
    }
    const left = this.token.find([{ type: pkcs11.CKA_ID, value: id }]).filter((h) => this.carriesMarks(h, id));
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
      const now = this.token.sessionState().state;
      if (now === 'out' || now === 'lost') lost = true;
    }
    const failures: CleanupFailure[] = [];
    if (lost) {
      try {
        this.token.reconnect();
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
}
