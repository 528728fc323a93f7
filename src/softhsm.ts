/**
 * Fresh SoftHSM 2 token stores: a private token directory and SOFTHSM2_CONF per run, tokens initialised
 * through PKCS#11 by src/softhsm-init.ts, which reads the PINs on standard input: softhsm2-util would need
 * them on its command line, where every user of the machine can read them. Used by the softhsm drivers and
 * by any suite that needs extra throwaway tokens.
 */
import { randomBytes } from 'node:crypto';
import { writeFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { SingleTokenView } from './driver.js';
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
  /** The token's own directory in the store (SoftHSM names it by a UUID). */
  dir: string;
}

export class SoftHsmStore {
  private constructor(
    readonly dir: string,
    readonly conf: string,
    readonly tokenDir: string,
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
    return new SoftHsmStore(tmp.path, conf, tokens, tmp.remove);
  }

  /**
   * Initialise a token in the first free slot. The PIN is random unless given (the secrets test passes a
   * canary); both PINs are registered as secrets before they are used.
   */
  async addToken(label: string, pin = randomPin(), soPin = randomPin()): Promise<SoftHsmToken> {
    registerSecret(pin, 'the SoftHSM user PIN (HSM_HARNESS_SOFTHSM_PIN)');
    registerSecret(soPin, 'the SoftHSM SO PIN');
    const before = new Set(await readdir(this.tokenDir));
    await runToolOk(process.execPath, [initScript()], {
      env: { ...process.env, ...this.env },
      timeoutMs: 30_000,
      input: JSON.stringify({ module: SOFTHSM_MODULE, label, pin, soPin }),
    });
    const made = (await readdir(this.tokenDir)).filter((d) => !before.has(d));
    if (made.length !== 1) throw new Error(`SoftHSM token ${label}: expected one new token directory in ${this.tokenDir}, found ${made.length}`);
    return { label, pin, soPin, dir: join(this.tokenDir, made[0]!) };
  }

  /**
   * A view of this store that holds only `token`: a private SOFTHSM2_CONF whose token directory has one empty
   * subdirectory, over which the token's own directory is bind-mounted in the viewer's mount namespace (SoftHSM
   * 2.6.1 ignores a symbolic link there: it lstat()s its entries). Objects the viewer creates land in the real
   * token, so the harness sees them.
   */
  async singleTokenView(token: SoftHsmToken): Promise<SingleTokenView> {
    const view = join(this.dir, `view-${basename(token.dir)}`);
    const target = join(view, 'tokens', basename(token.dir));
    await mkdir(target, { recursive: true });
    const conf = join(view, 'softhsm2.conf');
    await writeFile(conf, `directories.tokendir = ${join(view, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    return {
      env: { SOFTHSM2_CONF: conf },
      binds: [{ source: token.dir, target }],
      how: `a SoftHSM configuration whose token directory holds only ${token.label} (bind-mounted in the signer's mount namespace)`,
    };
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
