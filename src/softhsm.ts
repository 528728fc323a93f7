/**
 * Fresh SoftHSM 2 token stores: a private token directory and SOFTHSM2_CONF per run, tokens initialised
 * through PKCS#11 by src/softhsm-init.ts, which reads the PINs on standard input: softhsm2-util would need
 * them on its command line, where every user of the machine can read them. Used by the softhsm drivers and
 * by any suite that needs extra throwaway tokens.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot } from './paths.js';
import { makeTempDir } from './fsutil.js';
import { registerSecret } from './secrets.js';
import { runToolOk, which } from './proc.js';

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  label: string;
  pin: string;
  soPin: string;
}

export class SoftHsmStore {
  private constructor(
    readonly dir: string,
    readonly conf: string,
    private readonly removeDir: () => Promise<void>,
  ) {}

  /** The environment a process needs to see this store. */
  get env(): Record<string, string> {
    return { SOFTHSM2_CONF: this.conf };
  }

  static async create(): Promise<SoftHsmStore> {
    const tmp = await makeTempDir('softhsm');
    const tokens = join(tmp.path, 'tokens');
    await mkdir(tokens, { recursive: true });
    const conf = join(tmp.path, 'softhsm2.conf');
    await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    return new SoftHsmStore(tmp.path, conf, tmp.remove);
  }

  /**
   * Initialise a token in the first free slot. The PIN is random unless given (the secrets test passes a
   * canary); both PINs are registered as secrets before they are used.
   */
  async addToken(label: string, pin = randomPin(), soPin = randomPin()): Promise<SoftHsmToken> {
    registerSecret(pin, 'the SoftHSM user PIN (HSM_HARNESS_SOFTHSM_PIN)');
    registerSecret(soPin, 'the SoftHSM SO PIN');
    await runToolOk(process.execPath, [initScript()], {
      env: { ...process.env, ...this.env },
      timeoutMs: 30_000,
      input: JSON.stringify({ module: SOFTHSM_MODULE, label, pin, soPin }),
    });
    return { label, pin, soPin };
  }

  remove(): Promise<void> {
    return this.removeDir();
  }
}

/** The built token initialiser; code running from src/ (the tests) uses the build in dist/. */
function initScript(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.js') ? join(here, '..', 'softhsm-init.js') : join(projectRoot(), 'dist', 'src', 'softhsm-init.js');
}

export function randomPin(): string {
  return randomBytes(9).toString('base64url');
}

export async function softhsmAvailable(): Promise<{ ok: boolean; reason: string }> {
  if (!existsSync(SOFTHSM_MODULE)) return { ok: false, reason: `SoftHSM module ${SOFTHSM_MODULE} is missing; run npm start (or apt-get install softhsm2)` };
  if (!(await which('softhsm2-util'))) return { ok: false, reason: 'softhsm2-util is not on PATH; apt-get install softhsm2' };
  return { ok: true, reason: `SoftHSM 2 module ${SOFTHSM_MODULE}, fresh token per run` };
}
