/**
 * The secret store and the masking of free text (docs/safety-input.md). src/secrets.ts registers and reads
 * secrets (and refuses unsafe ones with a UsageError); this module only remembers and masks, so that
 * src/errors.ts can mask its messages without a cycle.
 */

const secrets = new Set<string>();
let textPattern: RegExp | null = null;
let base64Pattern: RegExp | null = null;
const listeners: ((value: string) => void)[] = [];

/**
 * Words the harness writes in almost every report whatever the drivers and suites: statuses and common report
 * words. A secret found inside one of them cannot be masked without revealing it by where the mask lands (a
 * PIN "pass" would turn "passed" into "***ed"). The words that come from the drivers, suites, mechanism and
 * KMIP tables (driver ids and titles, suite and case names, CKM_/CKR_/CKA_ names, tag names) are not listed
 * here: src/report-words.ts derives them from the registry and adds them with addStructuralWords, so a new
 * driver or suite needs no change here.
 */
export const STRUCTURAL_WORDS = [
  'pass',
  'passed',
  'fail',
  'failed',
  'skip',
  'skipped',
  'unsupported',
  'crash',
  'crashed',
  'timeout',
  'error',
  'ran',
  'unavailable',
  'done',
  'starting',
  'true',
  'false',
  'null',
  'undefined',
  'none',
  'unknown',
  'expected',
  'driver',
  'suite',
  'case',
  'token',
  'module',
  'session',
  'slot',
  'login',
  'signature',
  'report',
  'results',
  'hsm-harness',
  'harness',
  'reports',
  'junit',
  'capabilities',
];

/** Keys whose values are structure, never free text: they are not masked (see redactFreeText). */
const STRUCTURAL_KEYS = new Set([
  'type',
  'driver',
  'id',
  'suite',
  'case',
  'status',
  'kind',
  'phase',
  'title',
  'unexpectedPass',
  // What a worker's ledger forwards (src/ledger.ts): a directory the harness made, a process's start time. A
  // masked one would name no directory (left behind) or the wrong process. A token's identity and labels stay free text.
  'path',
  'start',
  'capabilities',
  'goldenCodes',
  'schemaVersion',
  'tool',
  'startedAt',
  'finishedAt',
  'durationMs',
  'summary',
  // Paths the harness chose or was given for the module and tools it loads.
  'module',
  'modulePath',
  'tokenDirectory',
  'executable',
]);

const extraWords = new Set<string>();

/**
 * Text the harness will print as it is (report words derived from the registry, a module path, a token label
 * or manufacturer): a secret found inside it is refused too. Returns why an already registered secret now
 * collides with one of the new words (the caller stops with a UsageError), or null.
 */
export function addStructuralWords(...words: string[]): string | null {
  for (const w of words) if (w) extraWords.add(w.toLowerCase());
  for (const secret of secrets) {
    const lower = secret.toLowerCase();
    if (words.some((w) => w?.toLowerCase().includes(lower))) {
      return 'occurs in a word the reports show as it is (a module path, token label, manufacturer or model)';
    }
  }
  return null;
}

/** Why a value cannot be kept out of reports safely, or null when it can. The value is never part of it. */
export function refusal(value: string): string | null {
  if ([...value].length < 4) return 'is shorter than 4 characters, too short to be masked in reports without mangling them';
  if (/^\d+$/.test(value) && value.length < 6) return 'is a number of fewer than 6 digits, which also stands for key sizes and durations in reports';
  const lower = value.toLowerCase();
  const word = STRUCTURAL_WORDS.find((w) => w.includes(lower));
  // The word itself is not named: it would give the secret away.
  if (word) return 'is part of a word the harness writes in its reports (a status or a common report word)';
  for (const w of extraWords) {
    if (w.includes(lower)) {
      return 'is part of a word the reports show as it is (a driver, suite or case name, a mechanism or algorithm name, the module path or token label)';
    }
  }
  return null;
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
    if (core.length >= 6) {
      out.add(core);
      out.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return [...out];
}

function alternation(forms: Iterable<string>): string {
  return [...new Set(forms)]
    .filter((f) => f.length > 0)
    .sort((a, b) => b.length - a.length)
    .map(escapeRegExp)
    .join('|');
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

const MASK = Buffer.from('***');

/**
 * Mask secrets in raw bytes from outside (a module's stderr), then decode them as one text and mask that too.
 * The bytes are searched for each secret's UTF-8, Latin-1 and UTF-16 forms first: a PIN written in another
 * encoding than UTF-8 would otherwise decode to U+FFFD around its readable rest and escape the text masks.
 * Give this whole lines (never a chunk of a pipe read: a character may be split across reads).
 */
export function redactBytes(bytes: Buffer): string {
  let b = bytes;
  for (const s of secrets) {
    const forms = [Buffer.from(s, 'utf8'), Buffer.from(s, 'utf16le')];
    if ([...s].every((c) => c.charCodeAt(0) <= 0xff)) forms.push(Buffer.from(s, 'latin1'));
    for (const f of forms) b = replaceBytes(b, f);
  }
  return redact(b.toString('utf8'));
}

function replaceBytes(b: Buffer, needle: Buffer): Buffer {
  let i = b.indexOf(needle);
  if (needle.length === 0 || i < 0) return b;
  const parts: Buffer[] = [];
  let from = 0;
  while (i >= 0) {
    parts.push(b.subarray(from, i), MASK);
    from = i + needle.length;
    i = b.indexOf(needle, from);
  }
  parts.push(b.subarray(from));
  return Buffer.concat(parts);
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
