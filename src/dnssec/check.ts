/**
 * The harness's own check of a zone a signer signed: every RRSIG must verify with node:crypto against a DNSKEY
 * of the zone, and that DNSKEY's key must be one read from the token (so a signer that quietly signed with a
 * software key fails). ldns-read-zone only normalises the text (one RR per line, absolute names, and with -u
 * every record type but RRSIG as RFC 3597 hex RDATA); the signatures are checked here, independently of ldns.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { makeTempDir } from '../fsutil.js';
import { runTool } from '../proc.js';
import { DNSSEC_ALGORITHMS, dnskeyToKeyObject, keyTag, type DnssecAlgorithm } from './dnskey.js';
import { signingInput, verifyWithDnskey, type RrsigFields } from './rrsig.js';
import { RRTYPE, canonicalName, type Rr } from './wire.js';

export interface ZoneCheck {
  rrsigs: number;
  verified: number;
  /** Key tags of the DNSKEYs that made the signatures, and whether each key is on the token. */
  keys: { keyTag: number; algorithm: number; onToken: boolean }[];
  /** What did not hold, one line each (at most a few; `rrsigs - verified` says how many). */
  problems: string[];
}

const TYPE_NAMES: Record<string, number> = { ...RRTYPE, CNAME: 5, NSEC3: 50, NSEC3PARAM: 51, CDS: 59, CDNSKEY: 60, ZONEMD: 63 };

function typeNumber(t: string): number {
  const m = /^TYPE(\d+)$/i.exec(t);
  if (m) return Number(m[1]);
  const n = TYPE_NAMES[t.toUpperCase()];
  if (n === undefined) throw new Error(`record type ${t} is not known to the zone check`);
  return n;
}

/** "YYYYMMDDHHmmSS" or seconds since the epoch (RFC 4034 §3.2). */
function rrsigTimeValue(s: string): number {
  if (/^\d{14}$/.test(s)) return Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12), +s.slice(12, 14)) / 1000;
  return Number(s);
}

interface Rrsig {
  owner: string;
  fields: RrsigFields;
  signature: Buffer;
}

/** Parse ldns-read-zone output (made with -u for every type except RRSIG). */
export function parseNormalisedZone(text: string): { records: Rr[]; rrsigs: Rrsig[] } {
  const records: Rr[] = [];
  const rrsigs: Rrsig[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith(';')) continue;
    const f = line.trim().split(/\s+/);
    const [owner, ttl, cls, type] = [canonicalName(f[0]!), Number(f[1]), f[2], f[3]!];
    if (cls !== 'IN') throw new Error(`unexpected class in "${line.slice(0, 80)}"`);
    if (type === 'RRSIG') {
      const [covered, alg, labels, origTtl, exp, inc, tag, signer, ...sig] = f.slice(4);
      rrsigs.push({
        owner,
        fields: {
          typeCovered: typeNumber(covered!),
          algorithm: Number(alg) as DnssecAlgorithm,
          labels: Number(labels),
          originalTtl: Number(origTtl),
          expiration: rrsigTimeValue(exp!),
          inception: rrsigTimeValue(inc!),
          keyTag: Number(tag),
          signerName: canonicalName(signer!),
        },
        signature: Buffer.from(sig.join(''), 'base64'),
      });
      continue;
    }
    if (f[4] !== '\\#') throw new Error(`record not in RFC 3597 form: "${line.slice(0, 80)}"`);
    const rdata = Buffer.from(f.slice(6).join(''), 'hex');
    if (rdata.length !== Number(f[5])) throw new Error(`RDATA length mismatch in "${line.slice(0, 80)}"`);
    records.push({ owner, type: typeNumber(type), ttl, rdata, text: '' });
  }
  return { records, rrsigs };
}

/**
 * The zone as ldns-read-zone prints it with every record type except RRSIG in RFC 3597 form. Signers write zones
 * in many layouts (BIND: owner omitted on continuation lines), so a first pass only lists the types present.
 */
export async function normaliseZone(zone: string, timeoutMs = 120_000): Promise<string> {
  const dir = await makeTempDir('zonecheck');
  try {
    const file = join(dir.path, 'zone');
    await writeFile(file, zone);
    const read = async (args: string[]) => {
      const r = await runTool('ldns-read-zone', [...args, file], { timeoutMs });
      if (r.code !== 0) throw new Error(`ldns-read-zone could not read the signed zone: ${r.stderr.trim().split('\n').pop() ?? ''}`);
      return r.stdout;
    };
    const types = new Set<string>();
    for (const line of (await read([])).split('\n')) {
      const t = line.split('\t')[3];
      if (t && t !== 'RRSIG') types.add(t);
    }
    return await read([...types].flatMap((t) => ['-u', t]));
  } finally {
    await dir.remove();
  }
}

function sameKey(a: KeyObject, b: KeyObject): boolean {
  return a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));
}

/**
 * Check every RRSIG of a signed zone. `tokenKeys` are the public keys read from the token; a DNSKEY that made a
 * signature but is not among them is a problem. Signatures must also be inside their validity period.
 */
export async function checkSignedZone(zone: string, tokenKeys: KeyObject[], now = Date.now() / 1000): Promise<ZoneCheck> {
  const { records, rrsigs } = parseNormalisedZone(await normaliseZone(zone));
  const dnskeys = records.filter((r) => r.type === RRTYPE.DNSKEY);
  const rrsets = new Map<string, Rr[]>();
  for (const r of records) {
    const k = `${r.owner}|${r.type}`;
    rrsets.set(k, [...(rrsets.get(k) ?? []), r]);
  }
  const problems: string[] = [];
  const keys = new Map<string, ZoneCheck['keys'][number]>();
  let verified = 0;
  for (const s of rrsigs) {
    const what = `RRSIG ${s.owner} ${s.fields.typeCovered} (key ${s.fields.keyTag})`;
    const rrset = rrsets.get(`${s.owner}|${s.fields.typeCovered}`);
    const candidates = dnskeys.filter((k) => k.owner === s.fields.signerName && k.rdata[3] === s.fields.algorithm && keyTag(k.rdata) === s.fields.keyTag);
    if (!DNSSEC_ALGORITHMS[s.fields.algorithm]) problems.push(`${what}: algorithm ${s.fields.algorithm} is not one the check knows`);
    else if (!rrset) problems.push(`${what}: covers no RRset in the zone`);
    else if (candidates.length === 0) problems.push(`${what}: no DNSKEY with that tag and algorithm in the zone`);
    else if (s.fields.inception > now || s.fields.expiration < now) problems.push(`${what}: outside its validity period`);
    else {
      const input = signingInput(
        s.fields,
        rrset.map((r) => ({ ...r, ttl: s.fields.originalTtl })),
      );
      const key = candidates.find((k) => verifyWithDnskey(k.rdata, input, s.signature));
      if (!key) problems.push(`${what}: does not verify with node:crypto`);
      else {
        const id = `${s.fields.keyTag}/${s.fields.algorithm}`;
        let entry = keys.get(id);
        if (!entry) {
          const pub = dnskeyToKeyObject(key.rdata);
          entry = {
            keyTag: s.fields.keyTag,
            algorithm: s.fields.algorithm,
            onToken: tokenKeys.some((t) => t.asymmetricKeyType === pub.asymmetricKeyType && sameKey(t, pub)),
          };
          keys.set(id, entry);
          if (!entry.onToken) problems.push(`DNSKEY ${id} signed the zone but its key is not one read from the token`);
        }
        if (entry.onToken) verified++;
      }
    }
  }
  if (rrsigs.length === 0) problems.push('the zone has no RRSIG');
  return { rrsigs: rrsigs.length, verified, keys: [...keys.values()], problems: problems.slice(0, 5) };
}
