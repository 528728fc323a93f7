/**
 * The benchmark figures as bench.json publishes them (one record per figure). A data format, like
 * results.json: the benchmarks write it (bench/report.ts) and the fleet commands read it.
 */
export interface LatencyStats {
  samples: number;
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
  sd: number;
  /** Relative margin of error of the mean (95 %), in percent. */
  rme: number;
}

/**
 * One figure. Rate figures from repeated batches carry every batch's rate; opsPerSec is their median and
 * best the fastest. Ratios are computed from figures of the same run: vsBareLoop = this best / the bare
 * loop's best; vsOneThread = this best / one thread's best; vsOdsHsmspeed = this best / ods-hsmspeed's best.
 */
export interface BenchRecord {
  driver: string;
  operation:
    | 'sign-latency'
    | 'sign-bare-loop'
    | 'sign-threads'
    | 'sign-threads-key-each'
    | 'sign-event-loop'
    | 'keygen'
    | 'random'
    | 'ods-hsmspeed'
    | 'hsmspeed-method'
    | 'kmip-sign'
    | 'kmip-sign-connections'
    /** A real DNSSEC signer signing a generated zone on the token (signers suite): RRSIGs per second of wall clock. */
    | 'zone-signing';
  algorithm: string;
  mechanism?: string;
  /** Signer threads, operations in flight or connections. */
  concurrency: number;
  samples: number;
  wallSeconds?: number;
  opsPerSec: number;
  best?: number;
  rates?: number[];
  /**
   * The machine's own speed (node:crypto signing the same kind of key on the harness's thread) in each of the rounds
   * of `rates`, in the same order: what `diff` uses to tell a token that changed from a machine that did.
   */
  machineRates?: number[];
  vsBareLoop?: number;
  vsOneThread?: number;
  vsOdsHsmspeed?: number;
  /** zone-signing: the signer (signers suite id), the zone's records and the RRSIGs it made. */
  signer?: string;
  records?: number;
  rrsigs?: number;
  /** zone-signing: the token's raw signing rate for the key type in the same run (bench, bare pkcs11js loop, one thread). */
  tokenRawRate?: number;
  /** zone-signing: opsPerSec / tokenRawRate, how much of the token the signer uses. */
  vsTokenRaw?: number;
  latencyMs?: LatencyStats;
}
