/**
 * PINs in pieces (issue 23): a module that leaks its PIN to stderr in a shape that defeats per-chunk masking
 * (fixtures/pkcs11/chatty-shim.c, SHIM_LEAK): one byte per write() so a multi-byte character is split
 * across reads; the PIN at the end of a 9,000-character line; the PIN in Latin-1 instead of UTF-8. After the
 * module dies, no piece of the PIN (no 5 consecutive characters of it, in any of those encodings) may be in
 * stdout, stderr or any report, and the crash is still recorded with the module's line.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';
import { SOFTHSM_MODULE, buildFixtureModule, cli, makeSoftHsmToken } from '../core/helpers.js';

const haveGcc = existsSync('/usr/bin/gcc') && existsSync(SOFTHSM_MODULE);
let dir: string;
let shim: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-pieces-'));
  if (haveGcc) shim = await buildFixtureModule('pkcs11/chatty-shim.c', dir);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every run of 5 consecutive characters of the PIN, lower-cased. */
function pieces(pin: string): string[] {
  const chars = [...pin.toLowerCase()];
  return chars.slice(0, -4).map((_, i) => chars.slice(i, i + 5).join(''));
}

describe.skipIf(!haveGcc)(
  haveGcc ? 'a module that leaks its PIN in pieces' : 'a module that leaks its PIN in pieces (skipped: gcc and SoftHSM are needed)',
  () => {
    test.each([
      ['drip', 'Drip-sécret-42'],
      ['long', 'Lqng-zvkq-Wt5-77'],
      ['latin1', 'Lätin-sëcret-93'],
    ])('SHIM_LEAK=%s, PIN %j: no piece of the PIN in any output', async (mode, pin) => {
      const token = await makeSoftHsmToken(`hh-pieces-${mode}`, pin);
      const out = join(dir, mode);
      try {
        const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out], {
          SOFTHSM2_CONF: token.conf,
          SHIM_REAL_MODULE: SOFTHSM_MODULE,
          SHIM_LEAK: mode,
          HSM_PKCS11_MODULE: shim,
          HSM_PKCS11_TOKEN: `hh-pieces-${mode}`,
          HSM_PKCS11_PIN: pin,
          HSM_HARNESS_STATE_DIR: join(dir, `state-${mode}`),
        });
        const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
        const crash = results.drivers[0]!.cases.find((c) => c.status === 'crash');
        expect(crash?.reason, JSON.stringify(results.drivers[0]!.cases.at(-1))).toBeDefined();
        // The module's line is still quoted: masked, and a long one cut only after masking.
        expect(crash!.reason).toMatch(mode === 'long' ? /last stderr line: x{500}…/ : /C_Login pin=\*\*\*/);
        const texts: [string, string][] = [
          ['stdout', r.stdout],
          ['stderr', r.stderr],
        ];
        for (const f of await readdir(out)) texts.push([f, await readFile(join(out, f), 'utf8')]);
        expect(texts.length).toBeGreaterThanOrEqual(6);
        for (const [name, text] of texts) {
          const lower = text.toLowerCase();
          for (const p of pieces(pin)) expect(lower, `${name} holds "${p}"`).not.toContain(p);
          expect(text, `${name} holds U+FFFD`).not.toContain('\ufffd');
        }
      } finally {
        await rm(token.dir, { recursive: true, force: true });
      }
    });
  },
);
