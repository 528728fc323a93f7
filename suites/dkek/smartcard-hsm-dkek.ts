/**
 * SmartCard-HSM DKEK backup, for drivers that declare 'smartcard-hsm-dkek': a key generated through PKCS#11
 * is wrapped by sc-hsm-tool, the wrap file is verified offline with src/dkek against the DKEK from the share
 * files, the original is deleted, the backup is unwrapped into a new key reference, and the restored key
 * signs (verified with node:crypto). The card is handed to each outside tool with Token.handOver, so no
 * session or PC/SC transaction of ours can block it or be invalidated under us.
 *
 * The DKEK key check value: a card reports it in sc-hsm-tool's status without a PIN; some firmware only
 * after the user PIN was verified. When the status does not show it, the KCV inside the wrapped blob is
 * compared with the shares instead. The card is initialised only after a status read that parsed and
 * showed no usable DKEK, and only when the driver allows it (SCHSM_ALLOW_INITIALIZE=1 with SCHSM_SO_PIN).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CaseHandle, Suite, SuiteContext } from '../../src/suite.js';
import type { SmartcardHsmDkekOffer } from '../../src/driver.js';
import { pkcs11 } from '../../src/pkcs11/module.js';
import type { Token } from '../../src/pkcs11/token.js';
import { generateKeyPair, publicKeyObject } from '../../src/pkcs11/keys.js';
import type { Dkek } from '../../src/dkek/dkek.js';
import { parseWrapFile } from '../../src/dkek/wrapfile.js';
import { verifyBlob, wipeKey } from '../../src/dkek/verify.js';
import { registerSecret } from '../../src/secrets.js';
import { runTool, which, type RunResult } from '../../src/proc.js';
import { makeTempDir } from '../../src/fsutil.js';
import { dkekFromShares, dkekSection, offered, signAndVerify, type RoundTrip } from './common.js';
import { dkekReport, type DkekSection } from './report.js';

/** What `sc-hsm-tool` (no action) printed, when its output is a status report at all. */
export interface CardStatus {
  /** DKEK shares the card was initialised for; 0 when it has no DKEK. */
  shares: number;
  /** Shares still to be imported. */
  missing: number;
  /** KCV of the loaded DKEK; undefined when the card does not show it (or shows zeros) before a PIN. */
  kcv?: string;
}

/** Parse sc-hsm-tool's status output. Anything that is not a status report throws: it is never "no DKEK". */
export function parseCardStatus(r: RunResult): CardStatus {
  const out = `${r.stdout}\n${r.stderr}`;
  const noCard = /.*(Failed to connect|Card not present|No smart card readers|not a SmartCard-HSM).*/i.exec(out)?.[0]?.trim();
  const why = r.signal
    ? `killed by ${r.signal} (timeout?)`
    : r.code !== 0
      ? `exit ${r.code}`
      : (noCard ?? (!/User PIN tries left|SO-PIN tries left|Version\s*:/.test(r.stdout) ? 'no status in its output' : undefined));
  if (why) throw new Error(`sc-hsm-tool status read failed (${why}); the card is left as it is`);
  const shares = Number(/DKEK shares\s*:\s*(\d+)/.exec(r.stdout)?.[1] ?? 0);
  const missing = Number(/(\d+)\s+share\(s\) still missing/.exec(r.stdout)?.[1] ?? 0);
  const kcv = /DKEK key check value\s*:\s*([0-9A-Fa-f]{16})/.exec(r.stdout)?.[1]?.toUpperCase();
  return { shares, missing, kcv: kcv && !/^0+$/.test(kcv) ? kcv : undefined };
}

/** Private keys on the card from `pkcs15-tool --list-keys`: each block parsed as a unit, whatever the line order. */
export function parseKeyList(stdout: string): { keyRef: number; id: string }[] {
  const keys: { keyRef: number; id: string }[] = [];
  const blocks = stdout.split(/\n(?=\S)/).filter((b) => /^Private .*Key/.test(b));
  for (const b of blocks) {
    const ref = /^\s*Key ref\s*:\s*(\d+)/m.exec(b)?.[1];
    const id = /^\s*ID\s*:\s*([0-9a-fA-F]+)/m.exec(b)?.[1];
    if (ref !== undefined && id) keys.push({ keyRef: Number(ref), id: id.toLowerCase() });
  }
  return keys;
}

interface Tools {
  run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult>;
  ok(cmd: string, args: string[], timeoutMs: number, what: string): Promise<RunResult>;
}

function tools(offer: SmartcardHsmDkekOffer, pin: string): Tools {
  // Secrets reach the tools as env:VAR references, never on the command line.
  const env: NodeJS.ProcessEnv = { ...process.env, HSM_HARNESS_CARD_PIN: pin };
  if (offer.initialize) env.HSM_HARNESS_CARD_SO_PIN = offer.initialize.soPin;
  offer.shares?.forEach((s, i) => {
    env[`HSM_HARNESS_SHARE_${i + 1}_PASSWORD`] = s.password;
  });
  const run = (cmd: string, args: string[], timeoutMs: number) => runTool(cmd, args, { env, timeoutMs });
  return {
    run,
    async ok(cmd, args, timeoutMs, what) {
      const r = await run(cmd, args, timeoutMs);
      const out = `${r.stdout}\n${r.stderr}`;
      // sc-hsm-tool 0.23 exits 0 after "Failed to connect to card": the output decides too.
      const bad = r.code !== 0 || r.signal || /Failed to connect|Card not present|error|failed/i.test(out.replace(/^Using reader.*$/m, ''));
      if (bad) {
        const last = (
          out
            .trim()
            .split('\n')
            .filter((l) => /fail|error|not|denied/i.test(l))
            .pop() ??
          out.trim().split('\n').pop() ??
          ''
        ).slice(0, 200);
        throw new Error(`${cmd} ${what} failed (${r.signal ?? `exit ${r.code}`}): ${last}`);
      }
      return r;
    },
  };
}

async function listKeys(t: Tools, reader: string): Promise<{ keyRef: number; id: string }[]> {
  return parseKeyList((await t.ok('pkcs15-tool', ['--reader', reader, '--list-keys'], 60_000, '--list-keys')).stdout);
}

/** Make sure the card holds the DKEK of the shares, initialising it only when that is allowed and the status said so. */
async function ensureDkek(c: CaseHandle, t: Tools, offer: SmartcardHsmDkekOffer, dkek: Dkek): Promise<string | undefined> {
  const status = parseCardStatus(await t.run('sc-hsm-tool', ['--reader', offer.reader], 60_000));
  c.detail('cardKcv', status.kcv ?? (status.shares ? 'not shown before PIN verification' : 'no DKEK'));
  const usable = status.shares > 0 && status.missing === 0;
  if (usable && (status.kcv === undefined || status.kcv === dkek.kcvHex)) return status.kcv;
  const what = !usable
    ? status.shares
      ? `the card waits for ${status.missing} more DKEK share(s)`
      : 'the card has no DKEK'
    : `the card's DKEK KCV is ${status.kcv}, the shares give ${dkek.kcvHex}`;
  if (!offer.initialize) c.skip(`${what}; initialising would erase the card, so it is done only with SCHSM_ALLOW_INITIALIZE=1 and SCHSM_SO_PIN`);
  const n = offer.shares!.length;
  await t.ok(
    'sc-hsm-tool',
    ['--reader', offer.reader, '--initialize', '--so-pin', 'env:HSM_HARNESS_CARD_SO_PIN', '--pin', 'env:HSM_HARNESS_CARD_PIN', '--dkek-shares', String(n)],
    120_000,
    '--initialize',
  );
  for (let i = 0; i < n; i++) {
    const share = ['--import-dkek-share', offer.shares![i]!.file, '--password', `env:HSM_HARNESS_SHARE_${i + 1}_PASSWORD`];
    await t.ok('sc-hsm-tool', ['--reader', offer.reader, ...share], 180_000, '--import-dkek-share');
  }
  const after = parseCardStatus(await t.run('sc-hsm-tool', ['--reader', offer.reader], 60_000));
  if (after.missing !== 0 || (after.kcv !== undefined && after.kcv !== dkek.kcvHex)) {
    const what = after.missing ? `${after.missing} missing share(s)` : `KCV ${after.kcv}`;
    throw new Error(`after importing the shares the card reports ${what}; the shares give ${dkek.kcvHex}`);
  }
  return after.kcv;
}

async function roundTrip(c: CaseHandle, token: Token, offer: SmartcardHsmDkekOffer, pin: string, dkek: Dkek): Promise<void> {
  const t = tools(offer, pin);
  await token.handOver(() => ensureDkek(c, t, offer, dkek));
  // 1. A key generated through PKCS#11 (EC: RSA generation on a card takes tens of seconds).
  const pair = await generateKeyPair(token, 'ec-p256', { label: 'hsm-harness-dkek-card' });
  const original = publicKeyObject(token, pair.publicKey);
  const id = pair.id.toString('hex');
  const tmp = await makeTempDir('dkek-card');
  try {
    const wrapPath = join(tmp.path, 'key.wrap');
    // 2. Wrap it with sc-hsm-tool.
    const keys = await token.handOver(async () => {
      const list = await listKeys(t, offer.reader);
      const mine = list.find((k) => k.id === id);
      if (!mine) throw new Error('the generated key does not appear in pkcs15-tool --list-keys');
      await t.ok(
        'sc-hsm-tool',
        ['--reader', offer.reader, '--wrap-key', wrapPath, '--key-reference', String(mine.keyRef), '--pin', 'env:HSM_HARNESS_CARD_PIN'],
        120_000,
        '--wrap-key',
      );
      return list;
    });
    // 3. Verify offline against the token's public key, with the project's DKEK library.
    const { report, key } = verifyBlob(parseWrapFile(await readFile(wrapPath)).blob, dkek, { expectedPublicKey: original });
    wipeKey(key);
    c.detail(
      'checks',
      report.checks.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.name}`),
    );
    if (!report.restorable) throw new Error("the card's backup of the key does not verify offline");
    // 4. A real restore: the original goes, the backup is unwrapped into a new key reference. The restored
    //    key carries the original PRKD and so the original CKA_ID; handOver tracks it again by that ID.
    token.objects.destroy(pair.privateKey);
    try {
      token.objects.destroy(pair.publicKey);
    } catch {
      /* OpenSC derives the public key from the private key's files */
    }
    const used = new Set(keys.map((k) => k.keyRef));
    let newRef = 1;
    while (used.has(newRef)) newRef++;
    await token.handOver(async () => {
      const unwrap = ['--unwrap-key', wrapPath, '--key-reference', String(newRef), '--pin', 'env:HSM_HARNESS_CARD_PIN', '--force'];
      await t.ok('sc-hsm-tool', ['--reader', offer.reader, ...unwrap], 120_000, '--unwrap-key');
      const restored = (await listKeys(t, offer.reader)).some((k) => k.keyRef === newRef && k.id === id);
      if (!restored) throw new Error(`no key with the original ID at reference ${newRef} after unwrapping`);
    });
    // 5. Sign with the restored key (found by its ID after the hand-over) and verify with node:crypto.
    const restored = token.find([
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
      { type: pkcs11.CKA_ID, value: pair.id },
    ]);
    if (restored.length !== 1) throw new Error(`${restored.length} private keys carry the test key's ID after the restore, expected 1`);
    await signAndVerify(token, restored[0]!, 'ec-p256', original);
    c.detail('restoredKeyRef', newRef);
  } finally {
    await tmp.remove();
    // Everything that carries the test key's ID (restored key, public key, CV request) is ours to delete.
    for (const h of token.find([{ type: pkcs11.CKA_ID, value: pair.id }])) {
      try {
        token.objects.destroy(h);
      } catch {
        token.objects.track(h);
      }
    }
  }
}

/** The declared offer and the section it writes; undefined when the driver does not declare this method. */
interface CardState {
  offer: SmartcardHsmDkekOffer;
  section: DkekSection;
  roundTrips: RoundTrip[];
}

async function wrapUnwrapCase(c: CaseHandle, s: CardState, ctx: SuiteContext): Promise<void> {
  const { offer } = s;
  const shares = offer.shares ?? c.skip(offer.sharesMissing ?? 'no DKEK shares configured');
  if (!(await which('sc-hsm-tool')) || !(await which('pkcs15-tool'))) c.skip('sc-hsm-tool / pkcs15-tool not on PATH (apt-get install opensc)');
  for (const share of shares) registerSecret(share.password);
  const dkek = await dkekFromShares(shares);
  s.section.kcv = dkek.kcvHex;
  try {
    await roundTrip(c, ctx.token!, offer, ctx.connections.pkcs11!.pin, dkek);
  } finally {
    dkek.wipe();
  }
}

export const dkekSmartcardHsmSuite: Suite<CardState | undefined> = {
  name: 'dkek',
  report: dkekReport,
  title: 'DKEK backup → restore → sign: SmartCard-HSM sc-hsm-tool wrap and unwrap',
  needs: 'pkcs11',
  setup(ctx) {
    const offer = offered(ctx, 'smartcard-hsm-dkek');
    return offer && { offer, ...dkekSection(ctx, 'smartcard-hsm (sc-hsm-tool)') };
  },
  cases: [
    {
      name: 'smartcard-hsm-wrap-unwrap-ec-p256',
      timeoutMs: 900_000,
      applies: (_ctx, s) => !!s,
      run: (c, s, ctx) => wrapUnwrapCase(c, s!, ctx),
      after(status, s, ctx) {
        s!.roundTrips.push({ alg: 'ec-p256', method: 'sc-hsm-tool --wrap-key / --unwrap-key', status: status as RoundTrip['status'] });
        if (status === 'pass' || status === 'fail') ctx.capability('wrap', status === 'pass');
      },
    },
  ],
};
