/**
 * A small zone writer: an example zone, its NSEC chain (ldns-verify-zone insists on authenticated denial),
 * and an RRSIG over every RRset made with any DnssecSigner. Output is a zone file ldns can read.
 */
import { dnskeyText, keyTag, type DnssecAlgorithm } from './dnskey.js';
import { rrsigRecord, signingInput, type DnssecSigner, type RrsigRr } from './rrsig.js';
import { RRTYPE, a, canonicalName, compareNames, labelCount, ns, nsec, rrLine, soa, txt, type Rr } from './wire.js';

/** SOA, NS, A and TXT records of a tiny zone under `origin`. */
export function exampleZone(origin: string, ttl = 3600): Rr[] {
  const o = canonicalName(origin);
  return [
    soa(o, ttl, { mname: `ns1.${o}`, rname: `hostmaster.${o}`, serial: 2024010101, refresh: 3600, retry: 900, expire: 604800, minimum: 300 }),
    ns(o, ttl, `ns1.${o}`),
    a(`ns1.${o}`, ttl, '192.0.2.53'),
    a(`www.${o}`, ttl, '192.0.2.80'),
    txt(`www.${o}`, ttl, 'hsm-harness DNSSEC end-to-end check', 'second string'),
    txt(`www.${o}`, ttl, 'another TXT record in the same RRset'),
  ];
}

export interface SignZoneOptions {
  origin: string;
  /** Unsigned records, including the SOA (its MINIMUM sets the NSEC TTL, RFC 4034 §4). */
  records: Rr[];
  algorithm: DnssecAlgorithm;
  /** DNSKEY RDATA of the signing key; it is added to the apex. */
  dnskey: Buffer;
  sign: DnssecSigner;
  inception: number;
  expiration: number;
}

export interface SignedZone {
  records: Rr[];
  keyTag: number;
  /** Number of RRSIGs made. */
  signatures: number;
}

function soaMinimum(records: Rr[], origin: string): number {
  const s = records.find((r) => r.type === RRTYPE.SOA && r.owner === origin);
  if (!s) throw new Error(`no SOA at ${origin}`);
  return s.rdata.readUInt32BE(s.rdata.length - 4);
}

/** Add the DNSKEY and the NSEC chain, then sign every RRset with one key (a single combined KSK/ZSK). */
export async function signZone(opts: SignZoneOptions): Promise<SignedZone> {
  const origin = canonicalName(opts.origin);
  const apexTtl = opts.records.find((r) => r.type === RRTYPE.SOA)?.ttl ?? 3600;
  const tag = keyTag(opts.dnskey);
  const data: Rr[] = [...opts.records, { owner: origin, type: RRTYPE.DNSKEY, ttl: apexTtl, rdata: opts.dnskey, text: dnskeyText(opts.dnskey) }];

  // NSEC chain over the owner names in canonical order, wrapping back to the apex (RFC 4034 §4.1.1).
  const owners = [...new Set(data.map((r) => r.owner))].sort(compareNames);
  const minimum = soaMinimum(data, origin);
  owners.forEach((owner, i) => {
    const types = [...data.filter((r) => r.owner === owner).map((r) => r.type), RRTYPE.RRSIG, RRTYPE.NSEC];
    data.push(nsec(owner, minimum, owners[(i + 1) % owners.length]!, types));
  });

  const out: Rr[] = [];
  let signatures = 0;
  for (const owner of owners) {
    // SOA first, as zone files conventionally start with it; then by type number.
    const rank = (t: number) => (t === RRTYPE.SOA ? -1 : t);
    const types = [...new Set(data.filter((r) => r.owner === owner).map((r) => r.type))].sort((x, y) => rank(x) - rank(y));
    for (const type of types) {
      const rrset = data.filter((r) => r.owner === owner && r.type === type);
      const fields = {
        typeCovered: type,
        algorithm: opts.algorithm,
        labels: labelCount(owner),
        originalTtl: rrset[0]!.ttl,
        expiration: opts.expiration,
        inception: opts.inception,
        keyTag: tag,
        signerName: origin,
      };
      const signature = await opts.sign(signingInput(fields, rrset));
      out.push(...rrset, rrsigRecord(owner, fields, signature));
      signatures++;
    }
  }
  return { records: out, keyTag: tag, signatures };
}

/** The zone file text. */
export function zoneText(records: Rr[]): string {
  return `${records.map(rrLine).join('\n')}\n`;
}

/** A copy of the records with one octet of the n-th RRSIG's signature flipped: a zone that must not verify. */
export function withDamagedSignature(records: Rr[], n = 0): Rr[] {
  let seen = -1;
  return records.map((r) => {
    const sig = (r as RrsigRr).rrsig;
    if (!sig || ++seen !== n) return r;
    const bad = Buffer.from(sig.signature);
    bad[bad.length >> 1]! ^= 0x01;
    return rrsigRecord(r.owner, sig.fields, bad);
  });
}
