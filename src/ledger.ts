/**
 * The ledger: everything the harness must clean up, recorded in one shape as soon as it exists. Producers record
 * here and nowhere else: servers (proc.ts startServerProcess), tool process groups (runTool with `group`),
 * temporary directories (fsutil.ts makeTempDir), containers (containers/start.ts), and on a token the objects the
 * run creates and the label prefixes a signer may use (pkcs11/objects.ts).
 *
 * Each process keeps its own ledger. In a driver's process (src/runner/worker.ts) every change is forwarded to the
 * parent as one message type; the parent's DriverLedger drops repeats and writes the run journal
 * (src/journal.ts, Journal.record), which is the on-disk mirror that cleanup trusts only after its checks.
 */
import type { TokenIdentity } from './pkcs11/run-identity.js';

/** One thing to clean up. */
export type Holding =
  /**
   * A process and its group; `start` is its start time when it was recorded (proc.ts processStartTime); `becomes`
   * the command line it execs into after a launcher (a signer's daemon started inside unshare and sh).
   */
  | { t: 'pid'; pid: number; start?: string; becomes?: string[] }
  /** A driver's own process: recorded by the parent only. */
  | { t: 'worker'; pid: number }
  | { t: 'dir'; path: string }
  /** A container, by the name the harness gave it before creating it (or an engine's id). */
  | { t: 'container'; id: string }
  /** A token objects live on; recorded before its first object or label prefix. */
  | { t: 'token'; token: TokenIdentity }
  /** Recorded before the creating call: the object may or may not exist. */
  | { t: 'object'; token: TokenIdentity; id: string; label: string }
  /** Objects whose CKA_LABEL starts with `prefix`, made by a program the harness does not control (a signer). */
  | { t: 'labelled'; token: TokenIdentity; prefix: string }
  /** Keys a signer names itself (Knot, BIND, OpenDNSSEC); its own record of them is in `dir` (Signer.keysMadeIn). */
  | { t: 'signer-keys'; token: TokenIdentity; signer: string; dir: string };

/** What one process tells the ledger: something is now held, or was let go of the ordinary way. */
export interface LedgerChange {
  held: boolean;
  entry: Holding;
}

/** The identity of a holding that is recorded once; objects, label prefixes and signer keys are recorded by their token's ledger. */
function keyOf(e: Holding): string | undefined {
  switch (e.t) {
    case 'pid':
    case 'worker':
      return `pid:${e.pid}`;
    case 'dir':
      return `dir:${e.path}`;
    // Kept here so that a last-resort release leaves the record's directory for cleanup (proc.ts releaseAllHeld).
    case 'signer-keys':
      return `signer-keys:${e.dir}`;
    case 'container':
      return `container:${e.id}`;
    case 'token':
      return `token:${e.token.modulePath}\u0000${e.token.label}\u0000${e.token.serial}`;
    default:
      return undefined;
  }
}

/** What this process holds now (tokens stay: they are where objects were). */
const here = new Map<string, Holding>();
let forward: ((change: LedgerChange) => void) | undefined;

/** Record something this process must clean up, before it is used (for an object: before the creating call). */
export function hold(entry: Holding): void {
  if (entry.t === 'object' || entry.t === 'labelled' || entry.t === 'signer-keys') hold({ t: 'token', token: entry.token });
  const key = keyOf(entry);
  if (key !== undefined) {
    if (here.has(key)) return;
    here.set(key, entry);
  }
  forward?.({ held: true, entry });
}

/** Record that something was released the ordinary way (an object: proven gone). */
export function release(entry: Holding): void {
  const key = keyOf(entry);
  if (key !== undefined && entry.t !== 'token') here.delete(key);
  forward?.({ held: false, entry });
}

/** What this process holds now, for a last-resort release when it must stop at once (proc.ts releaseAllHeld). */
export function heldHere(): Holding[] {
  return [...here.values()];
}

/** Send every change from now on (and what is held already) to `to`: the worker's link to the parent. */
export function forwardLedger(to: (change: LedgerChange) => void): void {
  forward = to;
  for (const entry of here.values()) to({ held: true, entry });
}

/**
 * The parent's ledger of one driver process: what that process forwarded, each holding written once. A process,
 * directory or container the worker let go of stays journalled (releaseDriver proves it gone, or releases it,
 * when the worker has exited); an object or label prefix let go of is written as gone.
 */
export class DriverLedger {
  /**
   * Pids the parent started or was told of in this run. A server may exec another program after it was recorded
   * (p11-kit server does), so for these releaseDriver checks the start time alone.
   */
  readonly pids = new Set<number>();
  private readonly seen = new Set<string>();

  constructor(private readonly write: (change: LedgerChange) => void) {}

  apply(change: LedgerChange): void {
    const { held, entry } = change;
    if (!held) {
      if (entry.t === 'object' || entry.t === 'labelled' || entry.t === 'signer-keys') this.write(change);
      return;
    }
    // A pid the worker let go of may come back as another process (a short docker call, then a server): by start time.
    const key = entry.t === 'pid' ? `${keyOf(entry)}@${entry.start}` : keyOf(entry);
    if (key !== undefined) {
      if (this.seen.has(key)) return;
      this.seen.add(key);
    }
    if (entry.t === 'pid' || entry.t === 'worker') this.pids.add(entry.pid);
    this.write(change);
  }
}
