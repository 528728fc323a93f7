/**
 * YubiHSM 2 backup, for drivers that declare 'yubihsm-wrap': export under a temporary wrap key, delete,
 * import, sign, verify. Runs only when the driver says the operator allowed it (YUBIHSM_WRAP_ROUNDTRIP=1).
 */
import type { CaseHandle, Suite, SuiteContext } from '../../src/suite.js';
import type { BackupOffer } from '../../src/driver.js';
import { pkcs11 } from '../../src/pkcs11/module.js';
import { generateKeyPair, publicKeyObject } from '../../src/pkcs11/keys.js';
import { dkekSection, offered, signAndVerify, unwrapTemplate, type RoundTrip } from './common.js';
import { dkekReport } from './report.js';

/** Vendor mechanism and key type of yubihsm_pkcs11 (Yubico pkcs11y.h: vendor base 0x59554200). */
const CKM_YUBICO_AES_CCM_WRAP = 0x80000000 + 0x59554200 + 0x04;
const CKK_YUBICO_AES256_CCM_WRAP = 0x80000000 + 0x59554200 + 42;

/** The declared offer and the section's round trips; undefined when the driver does not declare this method. */
interface YubihsmState {
  offer: Extract<BackupOffer, { method: 'yubihsm-wrap' }>;
  roundTrips: RoundTrip[];
}

async function exportImportCase(c: CaseHandle, s: YubihsmState, ctx: SuiteContext): Promise<void> {
  if (!s.offer.enabled) c.skip('set YUBIHSM_WRAP_ROUNDTRIP=1 to create a temporary wrap key on the YubiHSM 2 and run export → delete → import → sign');
  const token = ctx.token!;
  if (!token.offeredMechanisms().has(CKM_YUBICO_AES_CCM_WRAP)) c.unsupported('CKM_YUBICO_AES_CCM_WRAP is not in the mechanism list');
  const wrapKey = token.generateKey({ mechanism: pkcs11.CKM_GENERIC_SECRET_KEY_GEN }, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: CKK_YUBICO_AES256_CCM_WRAP },
    { type: pkcs11.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
    { type: pkcs11.CKA_WRAP, value: true },
    { type: pkcs11.CKA_UNWRAP, value: true },
    { type: pkcs11.CKA_LABEL, value: 'hsm-harness-dkek-wrap' },
  ]);
  const pair = await generateKeyPair(token, 'ec-p256', { extractable: true, label: 'hsm-harness-dkek-yubihsm' });
  const original = publicKeyObject(token, pair.publicKey);
  const wrapped = token.lib.C_WrapKey(token.session, { mechanism: CKM_YUBICO_AES_CCM_WRAP }, wrapKey, pair.privateKey, Buffer.alloc(8192));
  c.detail('wrappedBytes', wrapped.length);
  // The YubiHSM restores an object under its original ID, so the original goes first: a real restore.
  // That ID (a run ID from generateKeyPair) is not the one token.unwrapKey would allocate, so the raw call
  // stays and track() adopts the restored key by the CKA_ID it really carries.
  token.objects.destroy(pair.privateKey);
  const restored = token.lib.C_UnwrapKey(
    token.session,
    { mechanism: CKM_YUBICO_AES_CCM_WRAP },
    wrapKey,
    wrapped,
    unwrapTemplate('ec-p256', 'hsm-harness-dkek-yubihsm'),
  );
  token.objects.track(restored);
  await signAndVerify(token, restored, 'ec-p256', original);
}

export const dkekYubihsmWrapSuite: Suite<YubihsmState | undefined> = {
  name: 'dkek',
  report: dkekReport,
  title: 'DKEK backup → restore → sign: YubiHSM 2 export and import under a wrap key',
  needs: 'pkcs11',
  setup(ctx) {
    const offer = offered(ctx, 'yubihsm-wrap');
    return offer && { offer, roundTrips: dkekSection(ctx, 'yubihsm2 (wrap key)').roundTrips };
  },
  cases: [
    {
      name: 'yubihsm-export-import-ec-p256',
      applies: (_ctx, s) => !!s,
      run: (c, s, ctx) => exportImportCase(c, s!, ctx),
      after(status, s, ctx) {
        s!.roundTrips.push({
          alg: 'ec-p256',
          method: 'YubiHSM 2 export/import under a wrap key (CKM_YUBICO_AES_CCM_WRAP)',
          status: status as RoundTrip['status'],
        });
        if (status === 'pass' || status === 'fail') ctx.capability('wrap', status === 'pass');
      },
    },
  ],
};
