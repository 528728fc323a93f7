/**
 * A worker whose parent was killed alone (kill -9 of the harness, not of its process group) cleans up by itself
 * (src/runner/worker.ts orphaned → releaseAllOwned). It must keep the directory that holds a signer's record of the
 * keys it made (Knot's KASP database, BIND's key files): `hsm-harness cleanup` reads that record to find those keys
 * on a card. Seen on an emulated SmartCard-HSM: after such a kill during Knot's case, cleanup said the directory was
 * gone and Knot's RSA key pair stayed on the card.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releaseOwned, holdSignerRecord, ownResource, releaseAllOwned, releaseSignerRecord } from '../../src/proc.js';

const base = await mkdtemp(join(tmpdir(), 'hh-orphan-'));
afterAll(() => rm(base, { recursive: true, force: true }));

describe('releaseAllOwned and signer records', () => {
  test('an owned directory holding a signer record stays; the others go; a released record no longer holds', async () => {
    const withRecord = join(base, 'signer-knot-8');
    const other = join(base, 'signers');
    await mkdir(join(withRecord, 'run'), { recursive: true });
    await mkdir(other);
    ownResource({ dir: withRecord });
    ownResource({ dir: other });
    holdSignerRecord(join(withRecord, 'run'));
    releaseAllOwned();
    expect(existsSync(join(withRecord, 'run'))).toBe(true);
    expect(existsSync(other)).toBe(false);
    releaseSignerRecord(join(withRecord, 'run'));
    releaseAllOwned();
    expect(existsSync(withRecord)).toBe(false);
    releaseOwned({ dir: withRecord });
    releaseOwned({ dir: other });
  });
});
