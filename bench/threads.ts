/**
 * The parent side of bench/signer-thread.ts: start T signer threads (on one key, or a key each), then run synchronised
 * batches. A batch's rate is all signatures of all threads divided by the wall time from the first thread's
 * start to the last thread's finish (with windowMs, every thread signs for the same length of time). Used
 * for the one-session figure (T = 1), the thread scaling (one shared key, or a key per thread) and the
 * ods-hsmspeed side by side alike.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Token } from '../src/pkcs11/token.js';
import { projectRoot } from '../src/paths.js';
import type { SignerThreadData, SignerThreadMessage } from './signer-thread.js';

export interface SignerThreadsOptions {
  token: Token;
  pin: string;
  /** CKA_ID of the private key each thread signs with: thread i uses keyIds[i % keyIds.length]. */
  keyIds: Buffer[];
  mechanism: number;
  input: Buffer;
  hsmspeedInput?: boolean;
  threads: number;
  /** Signatures per thread per batch (ods-hsmspeed's method); or, with windowMs, a fixed time per batch. */
  iterations: number;
  windowMs?: number;
}

export interface BatchResult {
  rate: number;
  seconds: number;
  /** Signatures of all threads in this batch. */
  signatureCount: number;
  /** The last signature of each thread, in thread order, for verification. */
  signatures: Buffer[];
}

function threadScript(): string {
  const here = fileURLToPath(import.meta.url);
  // Tests import the TypeScript source; threads always run the build.
  if (here.endsWith('.js')) return join(here, '..', 'signer-thread.js');
  const built = join(projectRoot(), 'dist', 'bench', 'signer-thread.js');
  if (!existsSync(built)) throw new Error('dist/ is missing: run npm run build first');
  return built;
}

export class SignerThreads {
  private batchNo = 0;
  private waiting?: { batch: number; got: Map<number, Buffer>; resolve: () => void; reject: (e: unknown) => void };
  private failure?: unknown;

  private constructor(
    private readonly opts: SignerThreadsOptions,
    private readonly workers: Worker[],
    private readonly shared: SharedArrayBuffer,
  ) {}

  static async start(opts: SignerThreadsOptions): Promise<SignerThreads> {
    const shared = new SharedArrayBuffer(8 + 8 * 3 * opts.threads);
    const workers: Worker[] = [];
    const pool = new SignerThreads(opts, workers, shared);
    try {
      for (let index = 0; index < opts.threads; index++) {
        const data: SignerThreadData = {
          modulePath: opts.token.module.path,
          slot: new Uint8Array(opts.token.slot),
          keyId: new Uint8Array(opts.keyIds[index % opts.keyIds.length]!),
          pin: opts.pin,
          mechanism: opts.mechanism,
          input: new Uint8Array(opts.input),
          hsmspeedInput: opts.hsmspeedInput === true,
          iterations: opts.iterations,
          index,
          shared,
          ...(opts.windowMs !== undefined ? { windowMs: opts.windowMs } : {}),
        };
        const w = new Worker(threadScript(), { workerData: data });
        workers.push(w);
        let ready!: () => void;
        const isReady = new Promise<void>((resolve) => {
          ready = resolve;
        });
        w.on('message', (m: SignerThreadMessage) => {
          if (m.type === 'ready') ready();
          else pool.onDone(index, m.batch, Buffer.from(m.signature));
        });
        const failed = new Promise<never>((_, reject) => {
          const fail = (err: unknown) => {
            pool.fail(err);
            reject(err);
          };
          w.on('error', fail);
          w.on('exit', (code) => {
            if (pool.batchNo >= 0) fail(new Error(`a signer thread exited (code ${code}) before the benchmark ended`));
          });
        });
        failed.catch(() => undefined);
        // One thread at a time up to 'ready': a thread that must log in (its own connection) never does so
        // concurrently with another, which SoftHSM's file store behind p11-kit answered with CKR_PIN_INCORRECT.
        await Promise.race([isReady, failed]);
      }
      return pool;
    } catch (err) {
      await pool.close();
      throw err;
    }
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    this.waiting?.reject(err);
  }

  private onDone(index: number, batch: number, signature: Buffer): void {
    const w = this.waiting;
    if (!w || w.batch !== batch) return;
    w.got.set(index, signature);
    if (w.got.size === this.opts.threads) w.resolve();
  }

  /**
   * One synchronised batch on every thread: the harness's loop, or with bareIterations a bare pkcs11js loop
   * of that many signatures per thread (the reference, on the same threads).
   */
  async batch(bareIterations = 0): Promise<BatchResult> {
    if (this.failure) throw this.failure;
    const batch = ++this.batchNo;
    const got = new Map<number, Buffer>();
    const done = new Promise<void>((resolve, reject) => {
      this.waiting = { batch, got, resolve, reject };
    });
    const counter = new Int32Array(this.shared, 0, 2);
    const slots = new BigInt64Array(this.shared, 8);
    slots.fill(0n);
    Atomics.store(counter, 1, bareIterations);
    Atomics.store(counter, 0, batch);
    Atomics.notify(counter, 0);
    await done;
    this.waiting = undefined;
    // The window runs from the first thread's start to the last thread's finish, as each thread measured it.
    let start = 0n;
    let end = 0n;
    let signatureCount = 0;
    for (let i = 0; i < this.opts.threads; i++) {
      const [began, finished, count] = [slots[3 * i]!, slots[3 * i + 1]!, slots[3 * i + 2]!];
      if (finished === 0n) throw new Error('a signer thread reported a batch without finishing it');
      if (start === 0n || began < start) start = began;
      if (finished > end) end = finished;
      signatureCount += Number(count);
    }
    const seconds = Number(end - start) / 1e9;
    const signatures = Array.from({ length: this.opts.threads }, (_, i) => got.get(i)!);
    return { rate: signatureCount / seconds, seconds, signatureCount, signatures };
  }

  async close(): Promise<void> {
    this.batchNo = -1;
    const counter = new Int32Array(this.shared, 0, 1);
    Atomics.store(counter, 0, -1);
    Atomics.notify(counter, 0);
    // Threads leave their loop and close their session; terminate() only for one stuck in a module call.
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.threadId === -1) {
              resolve();
              return;
            }
            const t = setTimeout(() => {
              void w.terminate().then(() => resolve());
            }, 10_000);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}
