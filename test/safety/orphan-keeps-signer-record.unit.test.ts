/**
 * A worker whose parent was killed alone (kill -9 of the harness, not of its process group) cleans up by itself
 * (src/runner/worker.ts orphaned → releaseAllHeld). It must keep the directory that holds a signer's record of the
 * keys it made (Knot's KASP database, BIND's key files): `hsm-harness cleanup` reads that record to find those keys
 * on a card. Seen on an emulated SmartCard-HSM: after such a kill during Knot's case, cleanup said the directory was
 * gone and Knot's RSA key pair stayed on the card.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releaseAllHeld } from '../../src/proc.js';
import { hold, release } from '../../src/ledger.js';

const base = await mkdtemp(join(tmpdir(), 'hh-orphan-'));
afterAll(() => rm(base, { recursive: true, force: true }));

const token = { modulePath: '/nonexistent/module.so', label: 'card', serial: '0001' };

describe('releaseAllHeld and signer records', () => {
  test('an owned directory holding a signer record stays; the others go; a released record no longer holds', async () => {
    const withRecord = join(base, 'signer-knot-8');
    const other = join(base, 'signers');
    await mkdir(join(withRecord, 'run'), { recursive: true });
    await mkdir(other);
    hold({ t: 'dir', path: withRecord });
    hold({ t: 'dir', path: other });
    hold({ t: 'signer-keys', token, signer: 'knot', dir: join(withRecord, 'run') });
    releaseAllHeld();
    expect(existsSync(join(withRecord, 'run'))).toBe(true);
    expect(existsSync(other)).toBe(false);
    release({ t: 'signer-keys', token, signer: 'knot', dir: join(withRecord, 'run') });
    releaseAllHeld();
    expect(existsSync(withRecord)).toBe(false);
    release({ t: 'dir', path: withRecord });
    release({ t: 'dir', path: other });
  });
});
