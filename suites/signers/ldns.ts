/**
 * ldns 1.8 (Debian ldnsutils) `ldns-signzone -E pkcs11`: OpenSSL's engine_pkcs11 from libp11
 * (libengine-pkcs11-openssl) signs with a key already on the token, named by a PKCS#11 URI. ldns makes no keys,
 * so it always signs with a key pair the harness made. The module path and PIN reach the engine through a
 * private OpenSSL configuration (OPENSSL_CONF, 0600), never argv.
 * https://github.com/NLnetLabs/ldns/blob/develop/examples/ldns-signzone.1.in (ENGINE OPTIONS)
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { versionOf, runSignerTool } from './tool.js';
import { SignerFailed, type Signer } from './signer.js';

const ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';

function pctHex(hex: string): string {
  return hex.replace(/(..)/g, '%$1');
}

export const ldns: Signer = {
  id: 'ldns',
  title: 'ldns-signzone (OpenSSL engine_pkcs11)',
  packages: ['ldnsutils', 'libengine-pkcs11-openssl'],
  claims: { algorithms: [8, 10, 13, 14, 15], source: 'ldns-signzone(1): any DNSSEC algorithm ldns supports, keys through an OpenSSL engine' },
  async installed(env) {
    const v = await versionOf('ldns-signzone', ['-v'], env);
    if (!v) return { missing: 'ldns-signzone not found (apt-get install ldnsutils)' };
    if (!existsSync(ENGINE)) return { missing: `the OpenSSL PKCS#11 engine ${ENGINE} is missing (apt-get install libengine-pkcs11-openssl)` };
    return { version: `ldns ${/\d+\.\d+\.\d+/.exec(v)?.[0] ?? v}` };
  },
  profile: {
    functions: [
      'C_Initialize',
      'C_GetSlotList',
      'C_GetTokenInfo',
      'C_OpenSession',
      'C_Login',
      'C_FindObjectsInit',
      'C_FindObjects',
      'C_FindObjectsFinal',
      'C_GetAttributeValue',
      'C_SignInit',
      'C_Sign',
    ],
    mechanisms: ['CKM_RSA_PKCS', 'CKM_ECDSA'],
    source: 'https://github.com/OpenSC/libp11 (src/p11_rsa.c, src/p11_ec.c: CKM_RSA_PKCS over a DigestInfo, CKM_ECDSA over a digest)',
  },
  async sign(job) {
    if (!job.harnessKey) throw new SignerFailed('keygen', 'ldns-signzone makes no keys; it signs with keys already on the token');
    const t = job.target;
    const conf = join(job.workDir, 'openssl.cnf');
    const lines = [
      'openssl_conf = openssl_init',
      '[openssl_init]',
      'engines = engine_section',
      '[engine_section]',
      'pkcs11 = pkcs11_section',
      '[pkcs11_section]',
      'engine_id = pkcs11',
      `dynamic_path = ${ENGINE}`,
      `MODULE_PATH = ${t.modulePath}`,
      `PIN = ${t.pin}`,
      'init = 0',
      '',
    ];
    await writeFile(conf, lines.join('\n'), { mode: 0o600 });
    const key = `pkcs11:token=${encodeURIComponent(t.tokenLabel)};id=${pctHex(job.harnessKey.idHex)};type=private`;
    const out = join(job.workDir, 'ldns.signed');
    await runSignerTool(job, 'sign', 'ldns-signzone', ['-E', 'pkcs11', '-o', job.origin, '-k', `${job.algorithm},${key}`, '-f', out, job.zoneFile], {
      env: { ...t.env, OPENSSL_CONF: conf },
    });
    return { signedZoneFile: out, keys: 'made-by-harness', exposures: ['needs the PIN in clear in an OpenSSL configuration file (engine PIN)'] };
  },
};
