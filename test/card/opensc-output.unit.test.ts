/**
 * The smartcard-hsm driver's and DKEK suite's readings of OpenSC tool output, on output captured from OpenSC
 * 0.23 (fixtures/opensc/): key blocks parsed as units, a status that hides the KCV, a failed connection that
 * exits 0, and the reader choice.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCardStatus, parseKeyList } from '../../suites/dkek/smartcard-hsm-dkek.js';
import { chooseReader, parseReaderList } from '../../drivers/smartcard-hsm.js';
import { UsageError } from '../../src/errors.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures', 'opensc');
const text = (f: string) => readFileSync(join(FIX, f), 'utf8');
const ok = (stdout: string) => ({ code: 0, signal: null, stdout, stderr: '' });

describe('OpenSC tool output', () => {
  test('pkcs15-tool --list-keys: Key ref before ID, each block on its own', () => {
    const captured = text('pkcs15-tool-list-keys.txt');
    expect(parseKeyList(captured)).toEqual([{ keyRef: 0, id: '0000000000000000000000000000000000000000' }]);
    // A second block (the same fields, ID first) must not borrow the first block's reference.
    const second = 'Private EC Key [other]\n\tID             : A1B2\n\tUsage          : [0x04], sign\n\tKey ref        : 3 (0x03)\n';
    const noRef = 'Private RSA Key [no ref]\n\tID             : C3D4\n';
    expect(parseKeyList(`${captured}${noRef}${second}`)).toEqual([
      { keyRef: 0, id: '0000000000000000000000000000000000000000' },
      { keyRef: 3, id: 'a1b2' },
    ]);
  });

  test('sc-hsm-tool status: shares parsed; a KCV of zeros is "not shown", not a KCV', () => {
    expect(parseCardStatus(ok(text('sc-hsm-tool-status-no-pin.txt')))).toEqual({ shares: 2, missing: 0, kcv: undefined });
    const shown = text('sc-hsm-tool-status-no-pin.txt').replace('0000000000000000', 'B76F156D38294EBD');
    expect(parseCardStatus(ok(shown)).kcv).toBe('B76F156D38294EBD');
  });

  test('a status read that failed is never "no DKEK": exit 0 after "Failed to connect", non-zero exit, timeout', () => {
    expect(() => parseCardStatus(ok(text('sc-hsm-tool-no-card.txt')))).toThrow(/status read failed .*(Card not present|Failed to connect)/);
    expect(() => parseCardStatus({ code: 1, signal: null, stdout: '', stderr: 'boom' })).toThrow(/exit 1/);
    expect(() => parseCardStatus({ code: null, signal: 'SIGKILL', stdout: '', stderr: '' })).toThrow(/SIGKILL/);
    expect(() => parseCardStatus(ok('Using reader with a card: X\n'))).toThrow(/no status/);
  });

  test('reader choice: the one card, SCHSM_READER, or a usage error listing the readers', () => {
    const readers = parseReaderList(text('opensc-tool-list-readers.txt'));
    expect(readers).toEqual({ all: ['Virtual PCD 00 00', 'Virtual PCD 00 01'], withCard: ['Virtual PCD 00 00'] });
    expect(chooseReader(readers, undefined)).toBe('Virtual PCD 00 00');
    expect(chooseReader(readers, 'PCD 00 00')).toBe('Virtual PCD 00 00');
    expect(() => chooseReader(readers, 'Virtual PCD')).toThrow(UsageError);
    expect(() => chooseReader(readers, 'PCD 00 01')).toThrow(/no card in reader "Virtual PCD 00 01"/);
    const two = { all: ['A reader 00', 'B reader 01'], withCard: ['A reader 00', 'B reader 01'] };
    expect(() => chooseReader(two, undefined)).toThrow(/2 readers hold a card \("A reader 00", "B reader 01"\); set SCHSM_READER/);
  });
});
