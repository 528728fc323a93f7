/**
 * How a signer's keys are found after a kill, without a token: the journal's `signer-keys` entries (trusted only for a
 * directory the harness named), and BIND's record of its keys read from K*.private files (a `Label:` line holding the
 * base64 of the key's pkcs11: URI, RFC 7512). The integration tests (killed*.test.ts) run the real signers.
 */
import { describe, expect, test } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outstanding, type JournalEntry } from '../../src/journal.js';
import { bind } from '../../suites/signers/bind.js';

const token = { modulePath: '/usr/lib/softhsm/libsofthsm2.so', label: 't', serial: '1' };
const run: JournalEntry = { t: 'run', pid: 4_000_000, startedAt: '2026-01-01T00:00:00Z', prefix: 'a1a2a3a4a5a6a7a8' };
const lines = (...entries: JournalEntry[]) => outstanding([run, ...entries].map((entry, i) => ({ line: i + 1, entry })));

describe('signer-keys journal entries', () => {
  test("a harness-named directory is kept until its signer's keys are gone", () => {
    const dir = '/tmp/hsm-harness-signer-knot-13-Ab12Cd';
    const on = lines({ t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir });
    expect(on.refused).toEqual([]);
    expect(on.drivers.get('pkcs11')?.tokens[0]?.signers).toEqual([{ signer: 'knot', dir }]);
    const gone = lines({ t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir }, { t: 'signer-keys-gone', driver: 'pkcs11', token, dir });
    expect(gone.drivers.get('pkcs11')?.tokens).toEqual([]);
  });

  test('any other directory is refused with the reason', () => {
    const r = lines(
      { t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir: '/home/user' },
      { t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir: '/tmp/x/../hsm-harness-signer-knot-13-Ab12Cd' },
    );
    expect(r.refused.map((x) => x.line)).toEqual([2, 3]);
    expect(r.refused[0]!.reason).toMatch(/not named like a temporary directory of hsm-harness/);
    expect(r.refused[1]!.reason).toMatch(/not in normal form/);
    expect(r.drivers.get('pkcs11')?.tokens ?? []).toEqual([]);
  });
});

describe("BIND's record of its keys", () => {
  test('object= and id= of the pkcs11: URI in each K*.private file, percent-decoded; a software key is not on the token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-bind-keys-'));
    try {
      const keys = join(dir, 'run', 'bind-x', 'keys');
      await mkdir(keys, { recursive: true });
      // As dnssec-keygen 9.20 writes it: the URI NUL-terminated, in base64.
      const label = (uri: string) => Buffer.from(`${uri}\0`).toString('base64');
      await writeFile(
        join(keys, 'Kexample.test.+013+26654.private'),
        `Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nLabel: ${label('pkcs11:token=t;pin-source=file:/x/pin;object=example.test.-p%20q.-ksk-1')}\n`,
      );
      await writeFile(
        join(keys, 'Kexample.test.+008+00001.private'),
        `Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\nLabel: ${label('pkcs11:token=t;object=hsm-harness-k;id=%01%AB%ff')}\n`,
      );
      await writeFile(join(keys, 'Kexample.test.+015+00002.private'), 'Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\nPrivateKey: AAAA\n');
      await writeFile(join(keys, 'Kexample.test.+013+26654.key'), 'example.test. IN DNSKEY 257 3 13 AAAA\n');
      const found = await bind.keysMadeIn!(dir, process.env);
      expect(found.sort((a, b) => (a.label ?? '').localeCompare(b.label ?? ''))).toEqual([
        { label: 'example.test.-p q.-ksk-1' },
        { label: 'hsm-harness-k', id: '01abff' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
