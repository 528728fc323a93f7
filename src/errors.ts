/**
 * Errors the user can fix. Each is one line saying what was wrong and what to do; the CLI prints it and
 * exits 2 before any report is written.
 */
import { redact } from './secrets.js';

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(redact(message.replace(/\s*\n\s*/g, ' ')));
    this.name = 'UsageError';
  }
}

/** Message of any thrown value, on one line, with every registered secret masked. */
export function describeError(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  return redact(raw.replace(/\s*\n\s*/g, ' ').trim());
}
