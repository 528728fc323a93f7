/**
 * The base of every driver that reaches a token through a PKCS#11 module it does not start itself (the
 * generic module driver and the device presets): probe, start, and the PIN read from the environment.
 */
import { existsSync } from 'node:fs';
import type { BackupOffer, Driver, DriverTraits } from '../driver.js';
import { UsageError } from '../errors.js';
import { findSlot, type TokenSelector } from './slot.js';
import { loadModule } from './module.js';
import { countTokens, moduleTokenView, tokenIdentity, type ModuleTokens, type ModuleTokenView } from './token-view.js';
import { addStructuralWords, registerSecret } from '../secrets.js';

export interface SettledTarget {
  token: TokenSelector;
  backup?: BackupOffer;
  /** Extra facts for the report (the reader and slot chosen). No secrets. */
  info?: Record<string, unknown>;
}

export interface ModuleTarget {
  modulePath: string;
  token: TokenSelector;
  /** Reads the PIN inside the driver's process. */
  readPin: () => Promise<string>;
  env: Record<string, string>;
  describe: string;
  /** The backup and restore method this token offers (suites/dkek/<method>.ts runs it). */
  backup?: BackupOffer;
  /** Runs in the driver's process before the token is opened, for what needs the devices (the exact reader). */
  settle?: () => Promise<SettledTarget>;
}

export interface ModulePreset {
  id: string;
  title: string;
  order: number;
  envVars: string[];
  traits: DriverTraits;
  /** Returns the target, or a reason string when the environment does not configure this driver. */
  resolve(env: NodeJS.ProcessEnv): ModuleTarget | string;
  /** Whether the user declared the token a throwaway (destructive checks allowed); throws UsageError on a bad value. */
  throwaway?(env: NodeJS.ProcessEnv): boolean;
}

export function moduleDriver(preset: ModulePreset): Driver {
  return {
    id: preset.id,
    title: preset.title,
    order: preset.order,
    envVars: preset.envVars,
    kind: 'pkcs11',
    traits: preset.traits,
    async probe(env) {
      const t = preset.resolve(env);
      if (typeof t === 'string') return { ok: false, reason: t };
      // A pin-value from the URI is registered by now: one that is the token label is refused here, as run refuses it.
      const clash = addStructuralWords(t.modulePath, t.token.label ?? '', t.token.serial ?? '');
      if (clash) throw new UsageError(`${preset.id}: the PIN ${clash}; choose a longer, less common PIN`);
      const throwaway = preset.throwaway?.(env) ?? false;
      if (!existsSync(t.modulePath)) {
        throw new UsageError(`${preset.id}: PKCS#11 module not found: ${t.modulePath}; install it or fix the module path`);
      }
      return { ok: true, reason: `${t.describe}${throwaway ? ', declared throwaway by HSM_PKCS11_EPHEMERAL=1' : ''}` };
    },
    async start(env) {
      const t = preset.resolve(env);
      if (typeof t === 'string') throw new UsageError(`${preset.id}: ${t}`);
      // A PIN that also occurs in the module path or the token label would be masked there and give itself away.
      addStructuralWords(t.modulePath, t.token.label ?? '', t.token.serial ?? '');
      const pin = await t.readPin();
      const settled: SettledTarget = t.settle ? await t.settle() : { token: t.token, backup: t.backup };
      const throwaway = preset.throwaway?.(env) ?? false;
      const wrongPinAllowed = preset.traits.ephemeral || throwaway || env.HSM_ALLOW_WRONG_PIN === '1';
      const tokens = await singleTokenView(t.modulePath, t.env, settled.token);
      return {
        connections: {
          pkcs11: {
            modulePath: t.modulePath,
            token: settled.token,
            pin,
            env: t.env,
            wrongPinAllowed,
            backup: settled.backup,
            ...(tokens.view ? { singleTokenView: tokens.view } : { noSingleTokenView: tokens.missing }),
          },
        },
        info: { module: t.modulePath, ...settled.info, ...(throwaway ? { throwaway: 'declared by HSM_PKCS11_EPHEMERAL=1: destructive checks allowed' } : {}) },
        stop: () => tokens.stop(),
      };
    },
  };
}

/**
 * How a signer is shown only this token (src/pkcs11/token-view.ts): the module's tokens are counted here, in the driver's
 * process, with the module's environment (the worker sets the same before the suites load it).
 */
async function singleTokenView(modulePath: string, env: Record<string, string>, token: TokenSelector): Promise<ModuleTokenView> {
  Object.assign(process.env, env);
  const mod = loadModule(modulePath);
  let seen: ModuleTokens;
  let identity: { label: string; serial: string };
  try {
    identity = tokenIdentity(mod, findSlot(mod, token));
    seen = countTokens(mod);
  } finally {
    mod.release();
  }
  return moduleTokenView(modulePath, env, identity, seen);
}

/** The PIN reader of module drivers: the value of one environment variable, registered as a secret. */
export function pinFromEnv(env: NodeJS.ProcessEnv, name: string, driverId: string): () => Promise<string> {
  return async () => {
    const v = env[name];
    if (!v) throw new UsageError(`${driverId}: ${name} is not set; export the user PIN in ${name}`);
    registerSecret(v, name);
    return v;
  };
}

export function describeSelector(t: TokenSelector): string {
  if (t.label) return `token "${t.label}"`;
  if (t.serial) return `serial ${t.serial}`;
  if (t.slotId !== undefined) return `slot id ${t.slotId}`;
  if (t.labelIncludes) return `token label containing "${t.labelIncludes}"`;
  return 'first token present';
}
