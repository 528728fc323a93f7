/**
 * Any PKCS#11 module named by environment: HSM_PKCS11_MODULE plus HSM_PKCS11_TOKEN (label), or an RFC 7512
 * HSM_PKCS11_URI; the PIN from HSM_PKCS11_PIN (or the URI's pin-source / pin-value). Never destructive:
 * the token is treated as a physical device unless HSM_PKCS11_EPHEMERAL=1 says it is a throwaway (a test
 * token the user can re-initialise), which allows the destructive checks (today: one wrong-PIN attempt).
 *
 * moduleDriver() is also the base of the device presets (smartcard-hsm, yubihsm).
 */
import { existsSync } from 'node:fs';
import type { Driver, DriverTraits } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { UsageError } from '../src/errors.js';
import { parsePkcs11Uri } from '../src/pkcs11/uri.js';
import type { TokenSelector } from '../src/pkcs11/token.js';
import { addStructuralWords, readSecretSource, registerSecret } from '../src/secrets.js';

export interface ModuleTarget {
  modulePath: string;
  token: TokenSelector;
  /** Reads the PIN inside the driver's process. */
  readPin: () => Promise<string>;
  env: Record<string, string>;
  describe: string;
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
      const throwaway = preset.throwaway?.(env) ?? false;
      const wrongPinAllowed = preset.traits.ephemeral || throwaway || env.HSM_ALLOW_WRONG_PIN === '1';
      return {
        connections: { pkcs11: { modulePath: t.modulePath, token: t.token, pin, env: t.env, wrongPinAllowed } },
        resources: { pids: [], dirs: [] },
        info: { module: t.modulePath, ...(throwaway ? { throwaway: 'declared by HSM_PKCS11_EPHEMERAL=1: destructive checks allowed' } : {}) },
        async stop() { /* nothing started */ },
      };
    },
  };
}

function pinFromEnv(env: NodeJS.ProcessEnv, name: string, driverId: string): () => Promise<string> {
  return async () => {
    const v = env[name];
    if (!v) throw new UsageError(`${driverId}: ${name} is not set; export the user PIN in ${name}`);
    registerSecret(v, name);
    return v;
  };
}

export const driver = moduleDriver({
  id: 'pkcs11',
  title: 'PKCS#11 module from environment',
  order: 30,
  envVars: ['HSM_PKCS11_MODULE', 'HSM_PKCS11_TOKEN', 'HSM_PKCS11_URI', 'HSM_PKCS11_PIN', 'HSM_PKCS11_EPHEMERAL'],
  traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 4, caseTimeoutMs: 120_000 },
  resolve(env) {
    const uriText = env.HSM_PKCS11_URI;
    if (uriText) {
      const uri = parsePkcs11Uri(uriText); // throws UsageError when malformed
      // An attribute we cannot match would widen the selection to a token the operator did not mean.
      const unmatched = Object.keys(uri.other);
      if (unmatched.length) {
        throw new UsageError(`HSM_PKCS11_URI has attribute(s) this harness cannot match: ${unmatched.join(', ')}; remove them or use token=, serial= or slot-id=`);
      }
      const modulePath = uri.modulePath ?? env.HSM_PKCS11_MODULE;
      if (!modulePath) return 'HSM_PKCS11_URI has no module-path and HSM_PKCS11_MODULE is not set';
      const token: TokenSelector = {};
      if (uri.token !== undefined) token.label = uri.token;
      if (uri.serial !== undefined) token.serial = uri.serial;
      if (uri.slotId !== undefined) token.slotId = uri.slotId;
      if (!token.label && env.HSM_PKCS11_TOKEN) token.label = env.HSM_PKCS11_TOKEN;
      if (token.label === undefined && token.serial === undefined && token.slotId === undefined) {
        throw new UsageError('HSM_PKCS11_URI names no token; add token=<label> (or serial=, slot-id=), or set HSM_PKCS11_TOKEN');
      }
      const readPin = uri.pinValue !== undefined ? async () => { registerSecret(uri.pinValue, 'pin-value in HSM_PKCS11_URI'); return uri.pinValue!; }
        : uri.pinSource !== undefined ? () => readSecretSource(uri.pinSource!.startsWith('file:') ? uri.pinSource! : `file:${uri.pinSource}`, 'pin-source')
        : pinFromEnv(env, 'HSM_PKCS11_PIN', 'pkcs11');
      return { modulePath, token, readPin, env: {}, describe: `${modulePath} (${describeSelector(token)}, from HSM_PKCS11_URI)` };
    }
    const modulePath = env.HSM_PKCS11_MODULE;
    if (!modulePath) return 'HSM_PKCS11_MODULE (or HSM_PKCS11_URI) is not set';
    // Never "the first token": on a module with several tokens that could be one in production use.
    if (!env.HSM_PKCS11_TOKEN) throw new UsageError('HSM_PKCS11_MODULE is set but HSM_PKCS11_TOKEN is not; set it to the label of the token to test');
    const token: TokenSelector = { label: env.HSM_PKCS11_TOKEN };
    return { modulePath, token, readPin: pinFromEnv(env, 'HSM_PKCS11_PIN', 'pkcs11'), env: {}, describe: `${modulePath} (${describeSelector(token)})` };
  },
  throwaway(env) {
    const v = env.HSM_PKCS11_EPHEMERAL;
    if (v === undefined || v === '' || v === '0') return false;
    if (v === '1') return true;
    throw new UsageError(`HSM_PKCS11_EPHEMERAL must be 1 (the token is a throwaway: destructive checks allowed) or unset, got "${v}"`);
  },
});

export function describeSelector(t: TokenSelector): string {
  if (t.label) return `token "${t.label}"`;
  if (t.serial) return `serial ${t.serial}`;
  if (t.slotId !== undefined) return `slot id ${t.slotId}`;
  if (t.labelIncludes) return `token label containing "${t.labelIncludes}"`;
  return 'first token present';
}
