/**
 * Any PKCS#11 module named by environment: HSM_PKCS11_MODULE plus HSM_PKCS11_TOKEN (label), or an RFC 7512
 * HSM_PKCS11_URI; the PIN from HSM_PKCS11_PIN (or the URI's pin-source / pin-value). Never destructive:
 * the token is treated as a physical device unless HSM_PKCS11_EPHEMERAL=1 says it is a throwaway (a test
 * token the user can re-initialise), which allows the destructive checks (today: one wrong-PIN attempt).
 */
import { DEFAULT_TRAITS } from '../src/driver.js';
import { UsageError } from '../src/errors.js';
import { parsePkcs11Uri } from '../src/pkcs11/uri.js';
import type { TokenSelector } from '../src/pkcs11/slot.js';
import { readSecretSource, registerSecret } from '../src/secrets.js';
import { describeSelector, moduleDriver, pinFromEnv } from '../src/pkcs11/module-driver.js';

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
        throw new UsageError(
          `HSM_PKCS11_URI has attribute(s) this harness cannot match: ${unmatched.join(', ')}; remove them or use token=, serial= or slot-id=`,
        );
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
      const readPin =
        uri.pinValue !== undefined
          ? async () => {
              registerSecret(uri.pinValue, 'pin-value in HSM_PKCS11_URI');
              return uri.pinValue!;
            }
          : uri.pinSource !== undefined
            ? () => readSecretSource(uri.pinSource!.startsWith('file:') ? uri.pinSource! : `file:${uri.pinSource}`, 'pin-source')
            : pinFromEnv(env, 'HSM_PKCS11_PIN', 'pkcs11');
      const describe = `${modulePath} (${describeSelector(token)}, from HSM_PKCS11_URI)`;
      return { modulePath, token, readPin, env: {}, backup: { method: 'aes-wrap' }, describe };
    }
    const modulePath = env.HSM_PKCS11_MODULE;
    if (!modulePath) return 'HSM_PKCS11_MODULE (or HSM_PKCS11_URI) is not set';
    // Never "the first token": on a module with several tokens that could be one in production use.
    if (!env.HSM_PKCS11_TOKEN) throw new UsageError('HSM_PKCS11_MODULE is set but HSM_PKCS11_TOKEN is not; set it to the label of the token to test');
    const token: TokenSelector = { label: env.HSM_PKCS11_TOKEN };
    const readPin = pinFromEnv(env, 'HSM_PKCS11_PIN', 'pkcs11');
    return { modulePath, token, readPin, env: {}, backup: { method: 'aes-wrap' }, describe: `${modulePath} (${describeSelector(token)})` };
  },
  throwaway(env) {
    const v = env.HSM_PKCS11_EPHEMERAL;
    if (v === undefined || v === '' || v === '0') return false;
    if (v === '1') return true;
    throw new UsageError(`HSM_PKCS11_EPHEMERAL must be 1 (the token is a throwaway: destructive checks allowed) or unset, got "${v}"`);
  },
});
