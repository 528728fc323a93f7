/**
 * PINs, passphrases and key material must never reach logs, reports or error messages. Every value that
 * is secret is registered here as soon as it is read, and every line that leaves the process goes
 * through redact(). Values are kept only in this process's memory.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.js';

const secrets = new Set<string>();

/**
 * Remember a secret so that redact() masks it. The harness never prints a secret on purpose (the canary
 * test proves it: no mask ever appears in its output); masking is the safety net. Values too short or too
 * number-like to mask without also mangling ordinary text (a "1" flag, a 4-digit PIN that is also a key
 * size) are not masked: see maskable().
 */
export function registerSecret(value: string | undefined | null): void {
  if (value && maskable(value)) secrets.add(value);
}

/**
 * Below 4 characters, or all digits below 6, a value collides with numbers in reports ("RSA-2048", a
 * duration): masking it would corrupt the report and even reveal the secret by where the mask lands.
 */
function maskable(value: string): boolean {
  if (value.length < 4) return false;
  if (/^\d+$/.test(value) && value.length < 6) return false;
  return true;
}

/** Mask every registered secret where it stands as a whole token (not inside a longer word or number). */
export function redact(text: string): string {
  let out = text;
  // Longest first, so that a PIN that contains another secret is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.replace(new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(s)}(?![A-Za-z0-9])`, 'g'), '***');
  }
  return out;
}

/** Redact the strings inside a JSON-like value, leaving numbers, booleans and keys alone: the result stays valid JSON. */
export function redactValue<T>(value: T): T {
  if (secrets.size === 0) return value;
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v)])) as T;
  }
  return value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
  if (source.startsWith('env:')) {
    const name = source.slice(4);
    const v = process.env[name];
    if (v === undefined || v === '') throw new UsageError(`${what}: environment variable ${name} is not set; export it or use file:PATH`);
    value = v;
  } else if (source.startsWith('file:')) {
    const path = source.slice(5);
    try {
      value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    } catch {
      throw new UsageError(`${what}: cannot read ${path}; check the path and its permissions`);
    }
  } else {
    throw new UsageError(`${what}: give the secret as env:VAR or file:PATH, never on the command line`);
  }
  registerSecret(value);
  return value;
}

/**
 * Environment variables whose names say they hold a secret (HSM_PKCS11_PIN, KMIP_PASSWORD, …). Switches
 * such as HSM_ALLOW_WRONG_PIN=1 end in PIN too but hold no secret.
 */
export const SECRET_ENV = /(^|_)(PIN|PASSWORD|PASSPHRASE|SECRET)$/i;
const NOT_SECRET_ENV = /^HSM_ALLOW_|_ALLOW_/i;

export function registerSecretsFromEnv(env: NodeJS.ProcessEnv): void {
  for (const [k, v] of Object.entries(env)) if (SECRET_ENV.test(k) && !NOT_SECRET_ENV.test(k) && v) registerSecret(v);
}
