/**
 * runTool's time limit: a tool killed at its limit is marked so, and a signer's version probe that does not
 * answer is an error that says so, never "not installed" (a loaded machine once made PowerDNS look absent).
 */
import { describe, expect, test } from 'vitest';
import { runTool } from '../../src/proc.js';

describe('runTool time limit', () => {
  test('a tool killed at its limit is timedOut, with SIGKILL and the limit in stderr; one that exits is not', async () => {
    const slow = await runTool('sleep', ['5'], { timeoutMs: 200 });
    expect(slow.timedOut).toBe(true);
    expect(slow.signal).toBe('SIGKILL');
    expect(slow.stderr).toMatch(/sleep did not finish within 0 s$/);
    const quick = await runTool('true', [], { timeoutMs: 5_000 });
    expect(quick).toMatchObject({ code: 0, signal: null });
    expect(quick.timedOut).toBeUndefined();
    const missing = await runTool('hsm-harness-no-such-tool', [], { timeoutMs: 5_000 });
    expect(missing.code).toBe(127);
    expect(missing.timedOut).toBeUndefined();
  });
});
