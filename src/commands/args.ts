import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

/** node:util parseArgs, with its errors turned into one-line UsageErrors that point at --help. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '');
    throw new UsageError(`${command}: ${msg}; see hsm-harness ${command} --help`);
  }
}

/** Repeated values of a multiple option, once each, in first-seen order (`--driver softhsm --driver softhsm` runs it once). */
export function unique(values: string[] | undefined): string[] | undefined {
  return values && [...new Set(values)];
}
