/**
 * The single-token view (SingleTokenView) of a module the harness does not start itself: the generic module driver
 * and the device presets. Measured once at start, never assumed: a module whose only initialised token is the one
 * under test needs no view; one that shows others beside it is served by `p11-kit server` on this host, exporting
 * only that token, and the signer loads p11-kit-client.so. Nothing is written to any token: the server only
 * forwards what the signer asks, as the module itself would.
 */
import { existsSync } from 'node:fs';
import type { SingleTokenView } from '../driver.js';
import { makeTempDir } from '../fsutil.js';
import { P11KIT_CLIENT, p11KitRpcName, startP11KitServer } from '../p11kit.js';
import { which } from '../proc.js';
import { type LoadedModule, pkcs11, trimPadded } from './module.js';
import type { Handle } from './module.js';

/** The tokens the module shows at start: slots with a token present, and which of them are initialised. */
export interface ModuleTokens {
  present: number;
  initialised: number;
}

export function countTokens(mod: LoadedModule): ModuleTokens {
  const slots = mod.lib.C_GetSlotList(true);
  const initialised = slots.filter((s) => (mod.lib.C_GetTokenInfo(s).flags & pkcs11.CKF_TOKEN_INITIALIZED) !== 0).length;
  return { present: slots.length, initialised };
}

/** The label and serial of the token in `slot`, to name it in a PKCS#11 URI. */
export function tokenIdentity(mod: LoadedModule, slot: Handle): { label: string; serial: string } {
  const info = mod.lib.C_GetTokenInfo(slot);
  return { label: trimPadded(info.label), serial: trimPadded(info.serialNumber) };
}

export interface ModuleTokenView {
  view?: SingleTokenView;
  /** Why there is no view (then the signer sees every token of the module). */
  missing?: string;
  /** Stops the view's server and removes its directory (both in the ledger from their start). */
  stop(): Promise<void>;
}

/**
 * The view for `token` of the module at `modulePath` (with `env`), given what the module showed at start. An SoftHSM
 * store's empty slot for a new token is not initialised and holds no keys, so only initialised tokens count.
 */
export async function moduleTokenView(
  modulePath: string,
  env: Record<string, string>,
  token: { label: string; serial: string },
  seen: ModuleTokens,
): Promise<ModuleTokenView> {
  const nothing = { stop: async () => {} };
  const counted = `${seen.initialised} initialised of ${seen.present} ${seen.present === 1 ? 'token' : 'tokens'} present at start`;
  if (seen.initialised <= 1) {
    return { ...nothing, view: { env: {}, binds: [], how: `the module shows only this token (${counted}): no view needed` } };
  }
  if (!(await which('p11-kit'))) return { ...nothing, missing: `the module shows ${counted} and p11-kit is not installed (apt-get install p11-kit)` };
  if (!existsSync(P11KIT_CLIENT)) {
    return { ...nothing, missing: `the module shows ${counted} and ${P11KIT_CLIENT} is missing (apt-get install p11-kit-modules)` };
  }
  const dir = await makeTempDir('token-view');
  try {
    const server = await startP11KitServer(modulePath, [token], env, dir.path, 'p11-kit-server-token-view');
    const rpc = p11KitRpcName();
    return {
      view: {
        env: { P11_KIT_SERVER_ADDRESS: server.address },
        binds: [],
        modulePath: P11KIT_CLIENT,
        transport: rpc,
        how: `a p11-kit server on this host that exports only ${token.label} (the module shows ${counted}), reached through ${rpc}`,
      },
      async stop() {
        await server.stop();
        await dir.remove();
      },
    };
  } catch (err) {
    await dir.remove();
    return { ...nothing, missing: `the module shows ${counted} and p11-kit server could not export this token alone: ${(err as Error).message}` };
  }
}
