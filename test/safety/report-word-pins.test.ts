/**
 * A PIN that collides with a word the reports contain is refused before anything is written (issue 23):
 * mechanism and algorithm names (ECDSA, sha256, P-256), suite names (keygen), KMIP words (Secret), and the
 * token's manufacturer ("SoftHSM project", known only once the token is open). The words come from the
 * registry and the PKCS#11/KMIP tables (src/report-words.ts), not from a hand list; the expected words here
 * are from the PKCS#11 v2.40 mechanism names, RFC 8624 algorithm names and SoftHSM's own manufacturer ID.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOFTHSM_MODULE, cli, makeSoftHsmToken } from '../core/helpers.js';

const haveSoftHsm = existsSync(SOFTHSM_MODULE);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-words-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveSoftHsm)(haveSoftHsm ? 'PINs equal to report words' : 'PINs equal to report words (skipped: SoftHSM is needed)', () => {
  test.each(['ECDSA', 'project', 'sha256', 'keygen', 'P-256', 'Secret'])('PIN %j: exit 2, one line without it, no report', async (pin) => {
    const label = 'hh-words-tok';
    const token = await makeSoftHsmToken(label, pin.length < 4 ? `${pin}xx` : pin);
    const out = join(dir, `out-${pin}`);
    try {
      const r = await cli(['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out, '--quiet'], {
        SOFTHSM2_CONF: token.conf,
        HSM_PKCS11_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_TOKEN: label,
        HSM_PKCS11_PIN: pin,
        HSM_HARNESS_STATE_DIR: join(dir, 'state'),
      });
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^hsm-harness: .*(HSM_PKCS11_PIN|a PIN or password of this run)/);
      expect(lines[0]!.replace(SOFTHSM_MODULE, '').toLowerCase()).not.toContain(pin.toLowerCase());
      expect(existsSync(join(out, 'results.json'))).toBe(false);
    } finally {
      await rm(token.dir, { recursive: true, force: true });
    }
  });
});
