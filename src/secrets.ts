/**
 * PINs, passphrases and key material must never reach logs, reports or error messages.
 *
 * Rules (docs/safety-input.md):
 * - Only the secrets the harness itself reads are registered: the named variables a driver reads
 *   (HSM_PKCS11_PIN, SCHSM_PIN, KMIP_PASSWORD …), pin-source files, DKEK share passwords, and the PINs it
 *   generates. Other environment variables are none of its business, whatever their names.
 * - Masking applies to free text only (reasons, log lines, details strings, module stderr). Structural
 *   values (statuses, driver ids, suite and case names, paths the harness chose, numbers) are never masked,
 *   so a secret can never turn a failure into a pass or rename a driver: see STRUCTURAL_KEYS.
 * - A secret is masked wherever it occurs (not only as a whole word), case-insensitively, and so are its
 *   hex, base64 and percent-encoded forms.
 * - A secret that cannot be masked without mangling ordinary text is refused (UsageError, exit 2): see
 *   refusal().
 * Values are kept only in this process's memory (and sent to the parent runner over the IPC channel, so that
 * it can mask a driver process's stderr).
 */
import { INPUT_LIMITS, readInputFile } from './input.js';
import { UsageError } from './errors.js';
import { refusal, rememberSecret } from './redact.js';

// The store and the masking live in src/redact.ts; they are part of this module's interface.
export {
  STRUCTURAL_WORDS,
  addStructuralWords,
  refusal,
  rememberSecret,
  onSecretRegistered,
  redact,
  redactBytes,
  escapeControls,
  cleanText,
  redactFreeText,
} from './redact.js';

/**
 * Remember a secret the harness read or generated so that redact() masks it. Refuses (UsageError, exit 2)
 * a value that cannot be masked safely; `what` names where it came from (a variable, a file), never the value.
 */
export function registerSecret(value: string | undefined | null, what = 'a secret'): void {
  if (!value) return;
  const why = refusal(value);
  if (why) throw new UsageError(`${what} ${why}; choose a longer, less common PIN or password`);
  rememberSecret(value);
}

/** Overwrite a buffer that held key material or a password. */
export function wipe(...buffers: (Buffer | Uint8Array | undefined | null)[]): void {
  for (const b of buffers) if (b) b.fill(0);
}

/**
 * Resolve a secret given as `env:VAR`, `file:PATH` or (for PKCS#11 URIs) a literal, register it and
 * return it. Errors never include the value.
 */
export async function readSecretSource(source: string, what: string): Promise<string> {
  let value: string;
  let from: string;
  if (source.startsWith('env:')) {
    const name = source.slice(4);
    const v = process.env[name];
    if (v === undefined || v === '') throw new UsageError(`${what}: environment variable ${name} is not set; export it or use file:PATH`);
    value = v;
    from = `${what} (environment variable ${name})`;
  } else if (source.startsWith('file:')) {
    const path = source.slice(5);
    try {
      value = (await readInputFile(path, INPUT_LIMITS.secretFile, 'the file')).toString('utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`${what}: ${err instanceof UsageError ? err.message : `cannot read ${path}; check the path and its permissions`}`);
    }
    from = `${what} (file ${path})`;
  } else {
    throw new UsageError(`${what}: give the secret as env:VAR or file:PATH, never on the command line`);
  }
  registerSecret(value, from);
  return value;
}
