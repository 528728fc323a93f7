/**
 * The data the signers suite records (results.json sections.signers) and the options it reads: in a file of their
 * own, so the report renderer and the suitability suite can use them without importing the suite.
 */
import type { Pkcs11Trace } from '../../src/signers/trace.js';
import type { DnssecAlgorithm, Signer, SignOutcome } from './signer.js';

export interface SignerOptions {
  /** Run the slow signers too (the suite was named with --suite signers, or the full matrix). */
  all?: boolean;
  /** Signer ids to run (default: every signer that is not `slow`, or all when the suite was asked for by name). */
  only?: string[];
  /** Zone sizes (records) to time per signer × algorithm; empty in the quick run. */
  sizes?: number[];
}

/** One signer × algorithm as results.json records it. */
export interface SignerCaseRecord {
  case: string;
  algorithm: DnssecAlgorithm;
  status: string;
  keys?: SignOutcome['keys'];
  /** The signer's own words where it could not make keys on this token (then the harness made them). */
  keygenFailure?: string;
  workaround?: string;
  seconds?: number;
  rrsigs?: number;
  /** Zone-size figures: records → RRSIGs per second of the signing run (wall clock, process start included). */
  speed?: { records: number; rrsigs: number; seconds: number; rrsigsPerSecond: number; tokenRawRate?: number; ofRawRate?: number }[];
}

export interface SignerSection {
  id: string;
  title: string;
  /** Installed version, or why it could not run. */
  version?: string;
  missing?: string;
  claims: Signer['claims'];
  /** When the run observed it (ISO date): "proven by run" in the suitability matrix. */
  ranAt?: string;
  cases: SignerCaseRecord[];
  /** PKCS#11 calls the signer made, summed over its cases (pkcs11-spy). */
  observed?: Pkcs11Trace;
  /** Cases whose traced run failed where the untraced one signed (the spy changed the outcome): calls are missing. */
  traceIncomplete?: string[];
  /** The profile checked against the trace: listed but never called, called but not listed. */
  profileCheck?: { source: string; listedNotCalled: string[]; calledNotListed: string[]; incomplete?: string };
  exposures: string[];
}

export interface SignersSectionData {
  /** The driver these cases ran on (for links to the case rows). */
  driver: string;
  isolation: {
    how: string;
    isolated: boolean;
    /** How the signer is shown only the token under test (the driver's SingleTokenView), or why it is not. */
    singleToken?: string;
    /** Measured inside the isolation: p11-kit's modules, their initialised tokens, and the slots C_GetSlotList returned. */
    modulesSeen?: string[];
    tokensSeen?: string[];
    slotsSeen?: number;
    /** A transport the view adds (a p11-kit server on this host): its name and the token's mechanisms it does not forward. */
    viewTransport?: { name: string; hidden: string[] };
  };
  tracing: string;
  signers: SignerSection[];
}

declare module '../../src/results.js' {
  interface SectionTypes {
    signers: SignersSectionData;
  }
}
