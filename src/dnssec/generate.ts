/**
 * Unsigned zones of a chosen size for the signers suite and its speed figures: an apex (SOA, NS) and then
 * `records` records on their own owner names, cycling A, AAAA, TXT and MX so that every signer hashes and
 * sorts more than one record type. Names are lower case, so the canonical form is the presentation form.
 */
import { canonicalName } from './wire.js';

export interface GeneratedZone {
  origin: string;
  /** Master file text, every name absolute. */
  text: string;
  /** Records below the apex (the size asked for). */
  records: number;
  /** Owner names, apex included: a signer makes one RRSIG per RRset plus one per NSEC. */
  owners: number;
}

export function generateZone(origin: string, records: number): GeneratedZone {
  const o = canonicalName(origin);
  const lines = [`${o} 3600 IN SOA ns1.${o} hostmaster.${o} 2026010101 3600 900 604800 300`, `${o} 3600 IN NS ns1.${o}`, `ns1.${o} 3600 IN A 192.0.2.53`];
  for (let i = 0; i < records; i++) {
    const owner = `h${i}.${o}`;
    const kind = i % 4;
    if (kind === 0) lines.push(`${owner} 3600 IN A 198.51.${(i >> 8) & 255}.${i & 255}`);
    else if (kind === 1) lines.push(`${owner} 3600 IN AAAA 2001:db8::${(i & 0xffff).toString(16)}`);
    else if (kind === 2) lines.push(`${owner} 3600 IN TXT "hsm-harness record ${i}"`);
    else lines.push(`${owner} 3600 IN MX 10 mail${i}.${o}`);
  }
  return { origin: o, text: `${lines.join('\n')}\n`, records, owners: records + 2 };
}
