/**
 * DNSSEC end to end, the way OpenDNSSEC and Cascade's bridge use a token (docs/pkcs11-notes.md §9): generate the key
 * on the token, build the DNSKEY from the public key read back from it, sign every RRset of a small zone
 * with the token (hash on the host; CKM_RSA_PKCS over the DigestInfo, CKM_ECDSA over the digest, CKM_EDDSA
 * over the data), and have NLnet Labs' ldns-verify-zone accept the zone — and reject it once one
 * signature byte is flipped. ldns-key2ds cross-checks the key tag.
 */
import type { CaseHandle, Suite } from '../../src/suite.js';
import type { Token } from '../../src/pkcs11/token.js';
import type { DriverReport } from '../../src/results.js';
import { generateKeyPair, readPublicKey, KEY_ALGS, type KeyAlg } from '../../src/pkcs11/keys.js';
import { dnssecScheme } from '../../src/pkcs11/mechanisms.js';
import { notOfferedReason } from '../../src/pkcs11/transport.js';
import {
  DNSSEC_ALGORITHMS,
  dnskeyRdata,
  exampleZone,
  keyTag,
  ldnsAvailable,
  ldnsDs,
  ldnsVerifyZone,
  signZone,
  tokenSigner,
  withDamagedSignature,
  zoneText,
  type DnssecAlgorithm,
} from '../../src/dnssec/index.js';

const KEY_FOR: Record<DnssecAlgorithm, KeyAlg> = { 8: 'rsa-2048', 10: 'rsa-2048', 13: 'ec-p256', 14: 'ec-p384', 15: 'ed25519' };
const ORIGIN = 'hsm-harness.example.';

interface DnssecState {
  token: Token;
  offered: ReadonlySet<number>;
  ldns: Awaited<ReturnType<typeof ldnsAvailable>>;
}

async function signAndVerifyZone(c: CaseHandle, s: DnssecState, alg: DnssecAlgorithm, report: DriverReport): Promise<void> {
  const { token } = s;
  if (!s.ldns.ok) c.skip(s.ldns.reason);
  const gen = KEY_ALGS[KEY_FOR[alg]].mechanism;
  const mech = dnssecScheme(alg).spec.code;
  for (const m of [gen, mech]) if (!s.offered.has(m)) c.unsupported(notOfferedReason(report, m));
  const kp = await generateKeyPair(token, KEY_FOR[alg], { label: `hsm-harness-dnssec-${alg}` });
  try {
    const dnskey = dnskeyRdata(alg, readPublicKey(token, kp.publicKey));
    const tag = keyTag(dnskey);
    const theirs = await ldnsDs(ORIGIN, dnskey);
    c.detail('keyTag', tag);
    if (theirs.keyTag !== tag) throw new Error(`key tag ${tag} differs from ldns-key2ds's ${theirs.keyTag}`);

    const now = Math.floor(Date.now() / 1000);
    const zone = await signZone({
      origin: ORIGIN,
      records: exampleZone(ORIGIN),
      algorithm: alg,
      dnskey,
      sign: tokenSigner(token, alg, kp.privateKey),
      inception: now - 3600,
      expiration: now + 14 * 86400,
    });
    c.detail('signatures', zone.signatures);
    const verdict = await ldnsVerifyZone(zoneText(zone.records));
    c.detail('ldns', verdict.output);
    if (!verdict.ok) throw new Error(`ldns-verify-zone rejected the token-signed zone: ${verdict.output}`);
    const damaged = await ldnsVerifyZone(zoneText(withDamagedSignature(zone.records)));
    if (damaged.ok) throw new Error('ldns-verify-zone accepted a zone with a damaged signature; the check proves nothing');
  } finally {
    // A failed destroy stays tracked; the cleanup check retries and reports it.
    token.objects.destroyPair(kp);
  }
}

export const dnssec: Suite<DnssecState> = {
  name: 'dnssec',
  title: 'DNSSEC end to end (ldns-verify-zone)',
  needs: 'pkcs11',
  setup: async (ctx) => ({ token: ctx.token!, offered: ctx.token!.offeredMechanisms(), ldns: await ldnsAvailable() }),
  cases: ([8, 10, 13, 14, 15] as DnssecAlgorithm[]).map((alg) => ({
    name: DNSSEC_ALGORITHMS[alg].name,
    run: (c, s, ctx) => signAndVerifyZone(c, s, alg, ctx.report),
    after: (status, _s, ctx) => status !== 'skip' && ctx.capability(`dnssec:${alg}`, status === 'pass'),
  })),
};
