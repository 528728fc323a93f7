/**
 * PINs, passphrases and key material must never reach logs, reports or error messages. Every value that
 * is secret is registered here as soon as it is read, and every line that leaves the process goes
 * through redact(). Values are kept only in this process's memory.
 */
const secrets = new Set<string>();

/** Remember a secret so that redact() masks it. Short values (< 4 chars) are masked too, whole-word only. */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length > 0) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  // Longest first, so that a PIN that contains another secret is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length < 4) {
      out = out.replace(new RegExp(`\\b${escapeRegExp(s)}\\b`, 'g'), '***');
    } else {
      out = out.split(s).join('***');
    }
  }
  return out;
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
  const { readFile } = await import('node:fs/promises');
  const { UsageError } = await import('./errors.js');
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

/** Environment variables whose names say they hold a secret (PINs, passwords, passphrases). */
export const SECRET_ENV = /(PIN|PASSWORD|PASSPHRASE|SECRET|TOKEN_KEY)$/i;

export function registerSecretsFromEnv(env: NodeJS.ProcessEnv): void {
  for (const [k, v] of Object.entries(env)) if (SECRET_ENV.test(k) && v) registerSecret(v);
}
