/**
 * Errors the user can fix. Each is one line saying what was wrong and what to do; the CLI prints it and
 * exits 2 before any report is written. A UsageError thrown anywhere in a run (a probe, a driver's start, a
 * suite, a case) ends the whole run that way: the runner and the case wrapper pass it through untouched.
 */
import { cleanText } from './redact.js';

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    // Messages quote user input (argv, env, file contents): secrets masked, control characters escaped.
    super(cleanText(message.replace(/\s*\n\s*/g, ' '), true));
    this.name = 'UsageError';
  }
}

/** Message of any thrown value, on one line, with every registered secret masked and control characters escaped. */
export function describeError(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  return cleanText(raw.replace(/\s*\n\s*/g, ' ').trim(), true);
}
