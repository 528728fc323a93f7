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
import { readFile } from 'node:fs/promises';
import { UsageError } from './errors.js';

const secrets = new Set<string>();
let textPattern: RegExp | null = null;
let base64Pattern: RegExp | null = null;
const listeners: ((value: string) => void)[] = [];

/**
 * Words the harness writes as structure or in almost every reason: statuses, driver ids, suite names and
 * common report words. A secret found inside one of them cannot be masked without revealing it by where
 * the mask lands (a PIN "pass" would turn "passed" into "***ed"). test/core/secrets.test.ts checks that
 * every driver id and suite name is listed.
 */
export const STRUCTURAL_WORDS = [
  'pass', 'passed', 'fail', 'failed', 'skip', 'skipped', 'unsupported', 'crash', 'crashed', 'timeout', 'error', 'ran',
  'unavailable', 'done', 'starting', 'true', 'false', 'null', 'undefined', 'none', 'unknown', 'expected',
  'softhsm', 'softhsm-p11kit', 'pkcs11', 'smartcard-hsm', 'yubihsm', 'pykmip', 'cascade-hsm-bridge', 'softhsm-container',
  'bridge-container', 'nethsm', 'discovery', 'keygen', 'signing', 'dnssec', 'sessions', 'kmip', 'kmip-robustness', 'dkek',
  'bench', 'bench-kmip', 'suitability', 'golden', 'cleanup', 'driver', 'suite', 'case', 'token', 'module', 'session',
  'slot', 'login', 'signature', 'report', 'results', 'hsm-harness', 'harness', 'reports', 'junit', 'capabilities',
];

/** Keys whose values are structure, never free text: they are not masked (see redactFreeText). */
const STRUCTURAL_KEYS = new Set([
  'type', 'driver', 'id', 'suite', 'case', 'status', 'kind', 'phase', 'title', 'unexpectedPass', 'resources',
  'capabilities', 'goldenCodes', 'schemaVersion', 'tool', 'startedAt', 'finishedAt', 'durationMs', 'summary',
  // Paths the harness chose or was given for the module and tools it loads.
  'module', 'modulePath', 'tokenDirectory', 'executable',
]);

const extraWords: string[] = [];

/** Text the harness will print as it is (a module path, a token label): a secret found inside it is refused too. */
export function addStructuralWords(...words: string[]): void {
  for (const w of words) if (w) extraWords.push(w.toLowerCase());
}

/** Why a value cannot be kept out of reports safely, or null when it can. The value is never part of it. */
export function refusal(value: string): string | null {
  if ([...value].length < 4) return 'is shorter than 4 characters, too short to be masked in reports without mangling them';
  if (/^\d+$/.test(value) && value.length < 6) return 'is a number of fewer than 6 digits, which also stands for key sizes and durations in reports';
  const lower = value.toLowerCase();
  const word = STRUCTURAL_WORDS.find((w) => w.includes(lower));
  // The word itself is not named: it would give the secret away.
  if (word) return 'is part of a word the harness writes in its reports (a status, a driver or suite name, or a common report word)';
  if (extraWords.some((w) => w.includes(lower))) return 'occurs in the module path or token label, which the reports show as they are';
  return null;
}

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

/** Add a value without the safety check (the parent runner hearing of a secret a driver process registered). */
export function rememberSecret(value: string): void {
  if (!value || secrets.has(value)) return;
  secrets.add(value);
  textPattern = base64Pattern = null;
  for (const l of listeners) l(value);
}

/** Called for every secret registered from now on (the driver process forwards them to its parent). */
export function onSecretRegistered(listener: (value: string) => void): void {
  listeners.push(listener);
}

/** Base64 of `bytes` as it appears inside a longer base64 text, for each of the 3 alignments. */
function base64Forms(bytes: Buffer): string[] {
  const out = new Set<string>();
  for (const b64 of [bytes.toString('base64'), bytes.toString('base64url')]) out.add(b64);
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const core = enc.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6));
    if (core.length >= 6) { out.add(core); out.add(core.replace(/\+/g, '-').replace(/\//g, '_')); }
  }
  return [...out];
}

function alternation(forms: Iterable<string>): string {
  return [...new Set(forms)].filter((f) => f.length > 0).sort((a, b) => b.length - a.length).map(escapeRegExp).join('|');
}

function patterns(): [RegExp, RegExp] | null {
  if (secrets.size === 0) return null;
  if (!textPattern || !base64Pattern) {
    const text: string[] = [];
    const b64: string[] = [];
    for (const s of secrets) {
      const bytes = Buffer.from(s, 'utf8');
      text.push(s, bytes.toString('hex'), encodeURIComponent(s));
      b64.push(...base64Forms(bytes));
    }
    textPattern = new RegExp(alternation(text), 'gi');
    base64Pattern = new RegExp(alternation(b64), 'g');
  }
  return [textPattern, base64Pattern];
}

/** Mask every registered secret, and its hex, base64 and percent-encoded forms, wherever it occurs. */
export function redact(text: string): string {
  const p = patterns();
  if (!p) return text;
  return text.replace(p[0], '***').replace(p[1], '***');
}

/**
 * Make text from outside (argv, module stderr, a server's message) safe to print: control characters
 * (ANSI escapes, carriage returns, bidi overrides) are shown as \xNN / \u{NNNN} instead of acting on the
 * terminal. Newlines and tabs stay unless `oneLine`.
 */
export function escapeControls(text: string, oneLine = false): string {
  const re = oneLine ? /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g : /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
  return text.replace(re, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

/** Free text on its way out: secrets masked, control characters escaped. */
export function cleanText(text: string, oneLine = false): string {
  return escapeControls(redact(text), oneLine);
}

/**
 * Clean the free text inside a JSON-like value (reasons, details, log lines, findings, sections), leaving
 * structural keys, numbers and booleans alone: the result stays valid JSON with the same shape.
 */
export function redactFreeText<T>(value: T): T {
  if (typeof value === 'string') return cleanText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactFreeText(v)) as T;
  if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, STRUCTURAL_KEYS.has(k) ? v : redactFreeText(v)])) as T;
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
      value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    } catch {
      throw new UsageError(`${what}: cannot read ${path}; check the path and its permissions`);
    }
    from = `${what} (file ${path})`;
  } else {
    throw new UsageError(`${what}: give the secret as env:VAR or file:PATH, never on the command line`);
  }
  registerSecret(value, from);
  return value;
}
