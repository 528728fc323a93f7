/**
 * A SmartCard-HSM / Nitrokey HSM 2 through OpenSC's opensc-pkcs11.so. Needs SCHSM_PIN; SCHSM_READER (a
 * substring of the reader name) picks the card when more than one is present. The reader and the PKCS#11
 * slot are resolved once, here, and every tool gets exactly them. DKEK backup (suites/dkek/smartcard-hsm-dkek.ts)
 * needs SCHSM_DKEK_SHARES and the share passwords; initialising the card needs SCHSM_ALLOW_INITIALIZE=1 and
 * SCHSM_SO_PIN. One command at a time, slow key generation.
 */
import { DEFAULT_TRAITS, type SmartcardHsmDkekOffer } from '../src/driver.js';
import { moduleDriver, pinFromEnv } from '../src/pkcs11/module-driver.js';
import { loadModule, trimPadded } from '../src/pkcs11/module.js';
import { registerSecret } from '../src/secrets.js';
import { UsageError } from '../src/errors.js';
import { runTool } from '../src/proc.js';

export const OPENSC_MODULE = '/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so';

/** Readers with a card in them, by exact name, from `opensc-tool --list-readers`. */
async function readersWithCard(env: NodeJS.ProcessEnv): Promise<{ all: string[]; withCard: string[] }> {
  const r = await runTool('opensc-tool', ['--list-readers'], { env, timeoutMs: 30_000 });
  if (r.code !== 0 && !/No smart card readers found/i.test(r.stdout + r.stderr)) {
    throw new Error(`opensc-tool --list-readers failed (${r.signal ?? `exit ${r.code}`}): ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 200)}`);
  }
  return parseReaderList(r.stdout);
}

/** The "Nr.  Card  Features  Name" table of `opensc-tool --list-readers`. */
export function parseReaderList(stdout: string): { all: string[]; withCard: string[] } {
  const all: string[] = [];
  const withCard: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*\d+\s+(Yes|No)\s+(?:(?:PIN pad|Display)\s+)*(.+?)\s*$/.exec(line);
    if (!m) continue;
    all.push(m[2]!);
    if (m[1] === 'Yes') withCard.push(m[2]!);
  }
  return { all, withCard };
}

/** The reader to use: the one SCHSM_READER names, or the only one with a card; anything else is the user's to settle. */
export function chooseReader(readers: { all: string[]; withCard: string[] }, wanted: string | undefined): string {
  const list = (names: string[]) => (names.length ? names.map((n) => `"${n}"`).join(', ') : 'none');
  if (wanted) {
    const matches = readers.all.filter((n) => n.includes(wanted));
    if (matches.length === 0) throw new UsageError(`smartcard-hsm: no reader name contains SCHSM_READER "${wanted}" (readers: ${list(readers.all)})`);
    if (matches.length > 1) {
      throw new UsageError(`smartcard-hsm: SCHSM_READER "${wanted}" matches ${matches.length} readers (${list(matches)}); make it longer`);
    }
    if (!readers.withCard.includes(matches[0]!)) throw new UsageError(`smartcard-hsm: no card in reader "${matches[0]}"; insert the SmartCard-HSM`);
    return matches[0]!;
  }
  if (readers.withCard.length === 1) return readers.withCard[0]!;
  if (readers.withCard.length === 0) throw new UsageError(`smartcard-hsm: no card in any reader (readers: ${list(readers.all)}); insert the SmartCard-HSM`);
  throw new UsageError(`smartcard-hsm: ${readers.withCard.length} readers hold a card (${list(readers.withCard)}); set SCHSM_READER to the one to test`);
}

/** The PKCS#11 slot of the card in that reader (OpenSC's slot description is the reader name, cut to 64 bytes). */
function slotOfReader(modulePath: string, reader: string): number {
  const mod = loadModule(modulePath);
  try {
    const slots = mod.lib.C_GetSlotList(true).filter((s) => {
      const desc = trimPadded(mod.lib.C_GetSlotInfo(s).slotDescription);
      return desc.length > 0 && (desc === reader || reader.startsWith(desc));
    });
    // A card with several PINs has one slot per PIN; the user PIN's is the one to log in to.
    const user = slots.filter((s) => /UserPIN/.test(mod.lib.C_GetTokenInfo(s).label));
    const pick = user.length === 1 ? user[0] : slots.length === 1 ? slots[0] : undefined;
    if (!pick) {
      throw new UsageError(`smartcard-hsm: ${slots.length} PKCS#11 slots in reader "${reader}", none of them a user-PIN slot; check with pkcs11-tool -L`);
    }
    return pick.readUIntLE(0, 6);
  } finally {
    mod.release();
  }
}

function dkekOffer(env: NodeJS.ProcessEnv, reader: string, slotId: number): SmartcardHsmDkekOffer {
  const offer: SmartcardHsmDkekOffer = { method: 'smartcard-hsm-dkek', reader, slotId };
  const files = (env.SCHSM_DKEK_SHARES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!files.length) {
    offer.sharesMissing = "SCHSM_DKEK_SHARES is not set (list the card's DKEK share files and export SCHSM_DKEK_PASSWORD or SCHSM_DKEK_<n>_PASSWORD)";
  } else {
    const shares: { file: string; password: string }[] = [];
    for (let i = 0; i < files.length; i++) {
      const password = env[`SCHSM_DKEK_${i + 1}_PASSWORD`] ?? env.SCHSM_DKEK_PASSWORD;
      if (!password) {
        offer.sharesMissing = `SCHSM_DKEK_${i + 1}_PASSWORD (or SCHSM_DKEK_PASSWORD) is not set for ${files[i]}`;
        break;
      }
      registerSecret(password, `SCHSM_DKEK_${i + 1}_PASSWORD`);
      shares.push({ file: files[i]!, password });
    }
    if (!offer.sharesMissing) offer.shares = shares;
  }
  if (env.SCHSM_ALLOW_INITIALIZE === '1' && env.SCHSM_SO_PIN) {
    registerSecret(env.SCHSM_SO_PIN, 'SCHSM_SO_PIN');
    offer.initialize = { soPin: env.SCHSM_SO_PIN };
  }
  return offer;
}

export const driver = moduleDriver({
  id: 'smartcard-hsm',
  title: 'SmartCard-HSM / Nitrokey HSM 2 (OpenSC)',
  order: 40,
  envVars: ['SCHSM_PIN', 'SCHSM_READER', 'SCHSM_PKCS11_MODULE', 'SCHSM_SO_PIN', 'SCHSM_ALLOW_INITIALIZE', 'SCHSM_DKEK_*'],
  traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 1, caseTimeoutMs: 300_000, family: 'smartcard-hsm' },
  resolve(env) {
    if (!env.SCHSM_PIN) return 'SCHSM_PIN is not set (attach a SmartCard-HSM and export its user PIN to enable this driver)';
    const modulePath = env.SCHSM_PKCS11_MODULE ?? OPENSC_MODULE;
    return {
      modulePath,
      token: {},
      readPin: pinFromEnv(env, 'SCHSM_PIN', 'smartcard-hsm'),
      env: {},
      describe: `${modulePath}${env.SCHSM_READER ? ` in the reader named like "${env.SCHSM_READER}"` : ', the one card present'}`,
      async settle() {
        const reader = chooseReader(await readersWithCard(env), env.SCHSM_READER);
        const slotId = slotOfReader(modulePath, reader);
        return { token: { slotId }, backup: dkekOffer(env, reader, slotId), info: { reader, slotId } };
      },
    };
  },
});
