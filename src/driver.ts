/**
 * What a driver is. One file per driver under drivers/ exports a Driver; drivers/<id>.expect.json records
 * the cases that token is known not to support. Suites never look at a driver's id: they ask for the
 * connections it hands over (pkcs11, kmip, nethsm) and for its traits and capabilities.
 */

export interface Availability {
  ok: boolean;
  /** Human reason: why not, or how it will be reached. Never contains a secret. */
  reason: string;
  /**
   * Settings the probe decided for this run that the driver's process must use (e.g. the container drivers'
   * TESTCONTAINERS_HOST_OVERRIDE and TESTCONTAINERS_RYUK_DISABLED); added to that process's environment.
   */
  env?: Record<string, string>;
}

/** Static facts a driver declares about the token it reaches. */
export interface DriverTraits {
  /** A physical device: no wrong-PIN attempts or re-initialisation unless explicitly allowed by env. */
  physical: boolean;
  /** A software token created fresh for this run, so destructive checks are harmless. */
  ephemeral: boolean;
  /** Operations in flight at once that make sense (1 for a smartcard). */
  maxConcurrency: number;
  /** Per-case time limit in ms (slow smartcard key generation needs minutes). */
  caseTimeoutMs: number;
  /** Limit for a suite's own code outside its cases (setup, between cases) in ms; default caseTimeoutMs. */
  setupTimeoutMs?: number;
  /** Limit for start() in ms (image builds need more than a token init); default 180 s. */
  startTimeoutMs?: number;
  /** Device family, for comparison with documented figures (e.g. 'smartcard-hsm'); optional. */
  family?: string;
}

export interface Pkcs11Connection {
  modulePath: string;
  token: import('./pkcs11/slot.js').TokenSelector;
  /** The user PIN. Only ever present inside the driver's own process; registered as a secret. */
  pin: string;
  /** Environment the module needs (SOFTHSM2_CONF, P11_KIT_SERVER_ADDRESS …), set before it is loaded. */
  env: Record<string, string>;
  /** Whether C_Login with a wrong PIN may be tried on this token. */
  wrongPinAllowed: boolean;
  /** Further empty throwaway tokens on the same module (backup/restore round trips need a second token). */
  spareTokens?: { token: import('./pkcs11/slot.js').TokenSelector; pin: string }[];
  /** The backup and restore method the token offers; the DKEK suite for that method runs it. */
  backup?: BackupOffer;
  /**
   * How another process (a DNSSEC signer) can be shown this token and no other of the module: with the spare
   * tokens beside it, a program that takes "the first slot" (pkcs11-provider verifying for BIND) acts on whichever
   * token the module lists first, which changes from run to run. Absent: the driver cannot hide the other tokens
   * (noSingleTokenView says why).
   */
  singleTokenView?: SingleTokenView;
  noSingleTokenView?: string;
  /**
   * A transport between the harness and the token that may not forward every mechanism (p11-kit's RPC): its name
   * for the reports ("p11-kit 0.24 RPC") and the token's mechanism codes listed without it (e.g. pkcs11-tool -M on
   * the module the server loads). The discovery suite compares them (src/pkcs11/transport.ts).
   */
  transport?: { name: string; listDirect(): Promise<number[]> };
}

/** The module under test as a process sees it when only the token under test may be visible. */
export interface SingleTokenView {
  /** Environment that replaces the connection's own for that process (a private SOFTHSM2_CONF, another server). */
  env: Record<string, string>;
  /** Directories to bind-mount (source over target) in the process's private mount namespace before it starts. */
  binds: { source: string; target: string }[];
  /** One line for the report: how the other tokens are hidden. */
  how: string;
  /** The module the viewer loads instead of the connection's (p11-kit-client.so in front of a server on this host). */
  modulePath?: string;
  /**
   * A transport the viewer goes through and the harness does not (that server's RPC), by name for the reports: a
   * mechanism it does not forward is the transport's finding, never the token's or the signer's.
   */
  transport?: string;
}

/**
 * How a token's keys are backed up and restored. Each driver declares its own (from its own environment);
 * suites/dkek/<method>.ts asks for it. Secrets in it exist only inside the driver's process.
 */
export type BackupOffer =
  /** PKCS#11 C_WrapKey / C_UnwrapKey with a DKEK-derived AES key between the spare tokens. */
  | { method: 'aes-wrap' }
  | SmartcardHsmDkekOffer
  /** YubiHSM 2 export and import under a temporary wrap key; runs only when the operator allowed it. */
  | { method: 'yubihsm-wrap'; enabled: boolean };

/** SmartCard-HSM DKEK: sc-hsm-tool --wrap-key / --unwrap-key on the card in the reader the driver chose. */
export interface SmartcardHsmDkekOffer {
  method: 'smartcard-hsm-dkek';
  /** Exact reader name, for --reader of sc-hsm-tool and pkcs15-tool. */
  reader: string;
  /** PKCS#11 slot id of the card, for pkcs11-tool --slot. */
  slotId: number;
  /** The DKEK share files and their passwords; undefined with the reason when not configured. */
  shares?: { file: string; password: string }[];
  sharesMissing?: string;
  /** Initialising the card (which erases it) is allowed, with this SO PIN. */
  initialize?: { soPin: string };
}

export interface KmipConnection {
  host: string;
  port: number;
  /** PEM CA bundle, or insecure when the target uses a self-signed certificate we cannot pin. */
  ca?: string;
  insecure?: boolean;
  clientCert?: string;
  clientKey?: string;
  username?: string;
  password?: string;
  /** Which expectations profile the KMIP suites apply (e.g. 'pykmip', 'cascade-hsm-bridge'). */
  profile: string;
  /** True when the harness started the server itself (only then are robustness tests allowed). */
  launchedByHarness: boolean;
  /** Restart a server the harness launched (after a robustness case killed it). */
  restart?: () => Promise<void>;
}

export interface NethsmConnection {
  baseUrl: string;
  adminPassphrase: string;
  operatorPassphrase: string;
  backupPassphrase: string;
  unlockPassphrase: string;
  /** Start another fresh instance (for restore), when the driver can. */
  startFresh?: () => Promise<{ baseUrl: string; stop: () => Promise<void> }>;
}

export interface Connections {
  pkcs11?: Pkcs11Connection;
  kmip?: KmipConnection;
  nethsm?: NethsmConnection;
}

/**
 * What a driver may tell the runner while start() is still running. What it creates needs no telling: servers
 * (startServerProcess), temporary directories (makeTempDir) and containers (startNamedContainer) are in the ledger
 * (src/ledger.ts) as soon as they exist, and the parent releases them if this process dies.
 */
export interface StartHooks {
  /** A progress line, e.g. that a base image is being built (minutes, not a hang). */
  log(line: string): void;
}

export interface StartedDriver {
  connections: Connections;
  /** Extra facts for the report (server version, socket path …). No secrets. */
  info?: Record<string, unknown>;
  stop(): Promise<void>;
}

export interface Driver {
  id: string;
  title: string;
  /** Report order among the drivers, lower first (src/registry.ts sorts by it, then by id). */
  order: number;
  /**
   * Every environment variable this driver (or a suite on its behalf) reads; a trailing * covers a family
   * (SCHSM_DKEK_*). Tests strip exactly these, so a developer's hardware settings never leak into a test run.
   */
  envVars: string[];
  /** The connection kinds this driver provides when it runs. */
  kind: 'pkcs11' | 'kmip' | 'nethsm';
  traits: DriverTraits;
  /** Cheap check, run in the parent: no module is loaded here. */
  probe(env: NodeJS.ProcessEnv): Promise<Availability>;
  /** Runs inside the driver's own process. */
  start(env: NodeJS.ProcessEnv, hooks?: StartHooks): Promise<StartedDriver>;
}

export const DEFAULT_TRAITS: DriverTraits = {
  physical: false,
  ephemeral: false,
  maxConcurrency: 4,
  caseTimeoutMs: 60_000,
};
