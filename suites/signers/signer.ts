/**
 * One DNSSEC signer driven through PKCS#11. Each signer is one file in suites/signers/ that exports a
 * `Signer`; the signers suite (suites/signers/index.ts) runs every installed signer × DNSSEC algorithm on
 * the token under test and verifies what it signed twice (ldns-verify-zone, and every RRSIG with
 * node:crypto against the public key read from the token).
 *
 * A signer file knows how to drive its program non-interactively; it does not verify, time, trace or clean
 * up: the suite does that, the same way for every signer.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignerKey } from '../../src/journal.js';

/** DNSSEC algorithm numbers (RFC 8624): RSASHA256, RSASHA512, ECDSAP256SHA256, ECDSAP384SHA384, ED25519. */
export type DnssecAlgorithm = 8 | 10 | 13 | 14 | 15;
export const DNSSEC_ALGORITHMS: readonly DnssecAlgorithm[] = [8, 10, 13, 14, 15];

/** The token the signer must use, as the suite prepared it. */
export interface SignerTarget {
  /** The PKCS#11 module the signer loads (for a token behind p11-kit RPC, the p11-kit client module). */
  modulePath: string;
  /**
   * The environment to run the signer with: PATH and the module's own variables, plus a private p11-kit
   * configuration that registers only this module (so the signer sees no other token and touches no pcscd).
   */
  env: NodeJS.ProcessEnv;
  tokenLabel: string;
  /** The token's serial number as C_GetTokenInfo reports it (some signers select a token by serial). */
  tokenSerial: string;
  /** The user PIN. A secret: never in argv, logs or thrown messages; a signer that needs it in a file writes it 0600 in workDir. */
  pin: string;
  /** A label prefix every object the signer creates must carry, so the run can find and remove it. */
  labelPrefix: string;
  /**
   * The name under which `modulePath` is registered with p11-kit inside the isolation (PowerDNS and other
   * signers that pick a module by its p11-kit name use this); it is the only module registered there.
   */
  moduleName: string;
  /**
   * The command line that runs one of the signer's programs isolated (a private mount namespace whose p11-kit
   * registry holds only the module under test). Every process the signer starts, daemons included, goes
   * through it: `const c = target.isolate('kzonesign', args); runTool(c.cmd, c.args, …)`.
   */
  isolate(cmd: string, args: string[]): { cmd: string; args: string[] };
}

export interface SignJob {
  target: SignerTarget;
  algorithm: DnssecAlgorithm;
  /** Zone origin with the trailing dot, e.g. "example.test.". */
  origin: string;
  /** The unsigned zone (master file format) the suite generated. */
  zoneFile: string;
  /** A private (0700) directory for configuration, keys and databases; the suite journals and removes it. */
  workDir: string;
  /** The run's overall bound; the signer passes it to every process it spawns. */
  timeoutMs: number;
  /**
   * A key pair the harness made on the token under `label`/`idHex`, given when the signer cannot make its own
   * keys on this token: the signer imports/references it instead of generating.
   */
  harnessKey?: { label: string; idHex: string };
  /** A workaround from `Signer.workarounds` to apply; absent = the signer as Debian packages it. */
  workaround?: string;
}

/** Where the signed zone is and what the signer did to get it. */
export interface SignOutcome {
  /** The signed zone in master file format (for ldns-verify-zone and the harness's own RRSIG check). */
  signedZoneFile: string;
  /** Who made the signing keys: the signer on the token, or the harness (SignJob.harnessKey). */
  keys: 'made-by-signer' | 'made-by-harness';
  /** The signer's own exposures of the PIN, as findings about the signer (e.g. a clear-text PIN in its database). */
  exposures: string[];
}

/** A signer run that failed: its exact words and how it ended. Thrown by Signer.sign. */
export class SignerFailed extends Error {
  constructor(
    /** What the signer was doing: 'keygen', 'sign', 'start daemon', ... */
    readonly stage: string,
    /** The signer's own last line(s) of error output, already free of the PIN. */
    message: string,
    readonly exitCode?: number | null,
    readonly signal?: NodeJS.Signals | null,
  ) {
    super(message);
    this.name = 'SignerFailed';
  }
}

export interface Signer {
  /** Short id used in case names: knot, ldns, bind, powerdns, opendnssec. */
  id: string;
  title: string;
  /** Debian packages that provide it (set-up installs them). */
  packages: string[];
  /** The DNSSEC algorithms its documentation claims it can sign with through PKCS#11, with the source. */
  claims: { algorithms: DnssecAlgorithm[]; source: string };
  /** The installed version, or why it cannot run here (not installed, no PKCS#11 support compiled in). */
  installed(env: NodeJS.ProcessEnv): Promise<{ version: string } | { missing: string }>;
  /** Takes many seconds per zone (daemons): runs only in the full matrix (`--suite signers`, CI), not in `npm start`. */
  slow?: boolean;
  /** Known workarounds for failures as packaged (e.g. BIND 9.20 without RTLD_DEEPBIND). */
  workarounds?: { id: string; description: string; source: string }[];
  /**
   * The PKCS#11 functions and mechanisms its documentation says it uses: checked against what it was
   * observed to call; shown marked "unverified" where the signer is not installed.
   */
  profile: { functions: string[]; mechanisms: string[]; source: string };
  sign(job: SignJob): Promise<SignOutcome>;
  /**
   * For a signer that names its keys itself (not under SignerTarget.labelPrefix): the keys it made, as its own
   * record below `dir` (the case's directory, every SignJob.workDir of the case included) names them, CKA_ID in hex
   * and/or CKA_LABEL exactly as it wrote them. Read only from files, never from the token: `hsm-harness cleanup`
   * calls it after a killed run, and destroys exactly the key objects that match. Throws when the record exists but
   * cannot be read (then cleanup keeps the directory and reports it).
   */
  keysMadeIn?(dir: string, env: NodeJS.ProcessEnv): Promise<SignerKey[]>;
}

/**
 * The paths below `dir` whose name matches, of one kind; symbolic links are neither followed nor returned (the
 * directory is the harness's, what is in it the signer's).
 */
export async function pathsUnder(dir: string, name: RegExp, kind: 'file' | 'directory'): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if ((kind === 'file' ? e.isFile() : e.isDirectory()) && name.test(e.name)) found.push(path);
    if (e.isDirectory()) found.push(...(await pathsUnder(path, name, kind)));
  }
  return found;
}
