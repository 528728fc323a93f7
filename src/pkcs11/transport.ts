/**
 * Transport findings: a token reached through a transport (p11-kit's RPC, a container's socket) may offer
 * mechanisms the transport does not forward. The driver declares its transport and how to list the token's
 * mechanisms without it (Pkcs11Connection.transport); the discovery suite compares the two lists once, and
 * every later verdict names the transport for what it hides instead of blaming the token: cases are
 * `unsupported` "hidden by p11-kit 0.24 RPC", capabilities are marked hidden, suitability says "through …".
 * Mechanisms are compared by pkcs11-tool's listing (OpenSC), the one way to list them directly here and in a container.
 */
import type { DriverReport, Finding, TransportReport } from '../results.js';
import type { Pkcs11Connection } from '../driver.js';
import type { Token } from './token.js';
import { mechanismCode, mechanismName } from './constants.js';
import { KEY_ALGS, type KeyAlg } from './keys.js';
import { dnssecScheme } from './mechanisms.js';
import { runToolOk } from '../proc.js';
import type { DnssecAlgorithm } from '../dnssec/dnskey.js';

/**
 * Mechanism codes from `pkcs11-tool -M` output: "  EDDSA, keySize={256,456}, sign, verify" is CKM_EDDSA,
 * "  mechtype-0x210A, …" is 0x210a. A name that maps to no CKM constant is left out: it is never called hidden.
 */
export function parsePkcs11ToolMechanisms(stdout: string): number[] {
  const codes: number[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s+([A-Za-z0-9-]+),?/.exec(line);
    if (!m) continue;
    const raw = /^mechtype-0x([0-9a-f]+)$/i.exec(m[1]!);
    const code = raw ? Number.parseInt(raw[1]!, 16) : mechanismCode(`CKM_${m[1]!.replace(/-/g, '_')}`);
    if (code !== undefined && !codes.includes(code)) codes.push(code);
  }
  return codes;
}

/**
 * The mechanisms `pkcs11-tool -M` lists, run as `command args… -M` (pkcs11-tool itself, or `docker exec <id> pkcs11-tool`);
 * `args` select the module and token (--module, --token-label). Bounded in time.
 */
export async function listWithPkcs11Tool(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number[]> {
  const r = await runToolOk(command, [...args, '-M'], { env, timeoutMs: 30_000 });
  return parsePkcs11ToolMechanisms(r.stdout);
}

/** The comparison of the direct list with what arrived. */
export function compareTransport(name: string, direct: number[], through: ReadonlySet<number>): TransportReport {
  return {
    name,
    direct: direct.length,
    through: through.size,
    hiddenMechanisms: direct.filter((code) => !through.has(code)).map(mechanismName),
    hiddenCapabilities: {},
  };
}

/**
 * Before the suites (src/runner/worker.ts), so that every suite, whichever ran, names the transport for what it
 * hides: the driver's direct list against the mechanisms that arrived, into report.transport and one finding.
 */
export async function recordTransport(transport: NonNullable<Pkcs11Connection['transport']>, token: Token, report: DriverReport): Promise<void> {
  const finding = (kind: Finding['kind'], text: string) => {
    report.findings.push({ driver: report.id, suite: 'transport', kind, text });
  };
  let direct: number[];
  try {
    direct = await transport.listDirect();
  } catch (err) {
    finding('note', `the mechanisms behind ${transport.name} could not be listed directly, so what it hides is not known: ${(err as Error).message}`);
    return;
  }
  if (!direct.length) return finding('note', `listing the mechanisms behind ${transport.name} directly gave none, so what it hides is not known`);
  const t = compareTransport(transport.name, direct, token.offeredMechanisms());
  report.transport = t;
  if (t.hiddenMechanisms.length)
    finding(
      'transport',
      `${t.name} hides ${t.hiddenMechanisms.length} of the ${t.direct} mechanisms the token offers directly (${t.through} arrive): ${t.hiddenMechanisms.join(', ')}`,
    );
}

/** Why a case cannot have mechanism `code`: hidden by the transport, or not offered by the token. */
export function notOfferedReason(report: DriverReport, code: number): string {
  const name = mechanismName(code);
  const t = report.transport;
  if (t?.hiddenMechanisms.includes(name)) return `${name} is hidden by ${t.name} (the token behind it offers it: a transport finding, not the token's)`;
  return `token does not offer ${name}`;
}

/** The mechanisms a capability needs, where it is about mechanisms (keygen:, sign:, verify:, dnssec:, wrap). */
export function capabilityMechanisms(capability: string): number[] {
  const [kind, rest = ''] = capability.split(':');
  const keyGen = (key: string) => (KEY_ALGS[key as KeyAlg] ? [KEY_ALGS[key as KeyAlg].mechanism] : []);
  if (kind === 'keygen') return keyGen(rest);
  if (kind === 'sign' || kind === 'verify') {
    const [mech, key] = rest.split('/');
    const code = mechanismCode(mech!);
    return [...(code !== undefined ? [code] : []), ...(key ? keyGen(key) : [])];
  }
  if (kind === 'dnssec') {
    const scheme = dnssecScheme(Number(rest) as DnssecAlgorithm);
    return [scheme.spec.code, ...keyGen(scheme.key)];
  }
  if (kind === 'wrap') return [mechanismCode('CKM_AES_KEY_WRAP_PAD')!];
  return [];
}

/** Fill `hiddenCapabilities`: every capability recorded false that needs a mechanism the transport hides. */
export function markHiddenCapabilities(report: DriverReport): void {
  const t = report.transport;
  if (!t) return;
  t.hiddenCapabilities = {};
  for (const [cap, ok] of Object.entries(report.capabilities)) {
    if (ok) continue;
    const hidden = capabilityMechanisms(cap)
      .map(mechanismName)
      .filter((n) => t.hiddenMechanisms.includes(n));
    if (hidden.length) t.hiddenCapabilities[cap] = hidden;
  }
}
