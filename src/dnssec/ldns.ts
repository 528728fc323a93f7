/**
 * NLnet Labs' ldns tools (Debian ldnsutils) as the independent DNSSEC oracle: ldns-verify-zone checks a
 * signed zone, ldns-key2ds computes the key tag and DS digest of a DNSKEY with its own code.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from '../fsutil.js';
import { runTool, which } from '../proc.js';
import { dnskeyText } from './dnskey.js';
import { canonicalName } from './wire.js';

export async function ldnsAvailable(): Promise<{ ok: boolean; reason: string }> {
  for (const tool of ['ldns-verify-zone', 'ldns-key2ds']) {
    if (!(await which(tool))) return { ok: false, reason: `${tool} not found; apt-get install ldnsutils` };
  }
  return { ok: true, reason: 'ldnsutils present' };
}

export interface LdnsVerdict {
  ok: boolean;
  /** ldns-verify-zone's own words (last lines of its output). */
  output: string;
}

/** Run ldns-verify-zone on a zone file's text. ok = it exited 0 ("Zone is verified and complete"). */
export async function ldnsVerifyZone(zone: string): Promise<LdnsVerdict> {
  const dir = await makeTempDir('zone');
  try {
    const file = join(dir.path, 'zone.signed');
    await writeFile(file, zone);
    const r = await runTool('ldns-verify-zone', [file], { timeoutMs: 30_000 });
    const output = `${r.stdout}\n${r.stderr}`.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    return { ok: r.code === 0, output };
  } finally {
    await dir.remove();
  }
}

/** ldns-key2ds's view of a DNSKEY: its key tag and SHA-256 DS digest (hex, lower case). */
export async function ldnsDs(owner: string, dnskey: Buffer): Promise<{ keyTag: number; algorithm: number; digest: string }> {
  const dir = await makeTempDir('key2ds');
  try {
    const file = join(dir.path, 'dnskey.key');
    await writeFile(file, `${canonicalName(owner)} 3600 IN DNSKEY ${dnskeyText(dnskey)}\n`);
    const r = await runTool('ldns-key2ds', ['-n', '-2', file], { timeoutMs: 30_000 });
    const m = /\bDS\s+(\d+)\s+(\d+)\s+2\s+([0-9a-fA-F]+)/.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`ldns-key2ds could not read the DNSKEY: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`);
    return { keyTag: Number(m[1]), algorithm: Number(m[2]), digest: m[3]!.toLowerCase() };
  } finally {
    await dir.remove();
  }
}
