/**
 * The run's identity on every object it creates (the marks themselves: ./marks.ts): its random CKA_ID prefix
 * and counter. The worker sets the prefix from the parent's request.
 */
import { randomBytes } from 'node:crypto';
import { ID_HEAD_BYTES, LABEL_PREFIX, RUN_PREFIX_BYTES } from './marks.js';

/** Where a token lives, as the journal records it (no PIN: cleanup reads that from the same environment as the run). */
export interface TokenIdentity {
  modulePath: string;
  label: string;
  serial: string;
}

const run: { prefix: Buffer; counter: number } = { prefix: randomBytes(RUN_PREFIX_BYTES), counter: 0 };

/** The run's CKA_ID prefix (8 bytes); the worker sets it from the parent's request. */
export function setRunIdentity(prefix: Buffer): void {
  if (prefix.length !== RUN_PREFIX_BYTES) throw new Error(`the run prefix is ${RUN_PREFIX_BYTES} bytes`);
  run.prefix = Buffer.from(prefix);
  run.counter = 0;
}

export function runPrefix(): Buffer {
  return run.prefix;
}

/** The label prefix for objects a signer named `name` creates in this run (TokenObjects.expectLabelled). */
export function runLabelPrefix(name: string): string {
  return `${LABEL_PREFIX}${run.prefix.toString('hex')}-${name}-`;
}

/** A fresh CKA_ID: run prefix (8 bytes) ‖ counter (4 bytes) ‖ random bytes up to `length`. */
export function newRunId(length: number): Buffer {
  if (length < ID_HEAD_BYTES) throw new Error(`a harness CKA_ID needs at least ${ID_HEAD_BYTES} bytes`);
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(++run.counter);
  return Buffer.concat([run.prefix, counter, randomBytes(length - ID_HEAD_BYTES)]);
}

/** Whether a CKA_ID was allocated by this run. */
export function isRunId(id: Buffer): boolean {
  return id.length >= ID_HEAD_BYTES && id.subarray(0, 8).equals(run.prefix);
}
