/**
 * Cleanup removes a container only when the journal names one the harness made. The drivers journal a
 * container by the name the harness gives it before creating it (src/containers/start.ts), so that Ctrl-C
 * during a start can still remove it; refusing those names once left every interrupted container running.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { Journal } from '../../src/journal.js';

const dir = mkdtempSync(join(tmpdir(), 'hh-journal-containers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a harness-named container and an engine id are outstanding; a foreign container's name is refused", () => {
  const file = join(dir, 'run.jsonl');
  const lines = [
    { t: 'run', pid: 999_999, startedAt: '2026-12-07T00:00:00.000Z', prefix: '0011223344556677' },
    { t: 'container', driver: 'softhsm-container', id: 'hsm-harness-softhsm-container-14f93a06' },
    { t: 'container', driver: 'softhsm-container', id: '3f1c2b9a8d7e' },
    { t: 'container', driver: 'softhsm-container', id: 'postgres-production' },
    { t: 'container', driver: 'softhsm-container', id: 'hsm-harness-softhsm-container-14f93a06; rm -rf /' },
  ];
  writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  const read = Journal.at(file).read();
  expect(read.drivers.get('softhsm-container')?.containers).toEqual(['hsm-harness-softhsm-container-14f93a06', '3f1c2b9a8d7e']);
  expect(read.refused.map((r) => r.line)).toEqual([4, 5]);
});
