/**
 * Sessions, login and error codes. Each error case provokes one situation, records the exact CK_RV as
 * the token's golden value and checks that PKCS#11 v2.40 allows that code for that function
 * (fixtures/pkcs11/allowed-ckr.json). Also probes the session limit and the random number generator.
 */
import { randomBytes } from 'node:crypto';
import type { CaseHandle, Suite, SuiteContext } from '../../src/suite.js';
import { pkcs11, type Handle } from '../../src/pkcs11/module.js';
import { ckrOf, isCkr } from '../../src/pkcs11/ckr.js';
import { Token } from '../../src/pkcs11/token.js';
import { CKF_GENERATE_KEY_PAIR, ckrName } from '../../src/pkcs11/constants.js';
import { KEY_ALGS, generateKeyPair, publicKeyObject, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { schemeForKey } from '../../src/pkcs11/mechanisms.js';
import { expectFailure } from './codes.js';
import { sessionLimit } from './discovery.js';

export const WRONG_PIN_SKIP = 'physical device: set HSM_ALLOW_WRONG_PIN=1 to allow one wrong-PIN attempt';

/** The cheapest key type the token advertises generation for. */
function cheapestAlg(token: Token): KeyAlg | undefined {
  const listed = token.offeredMechanisms();
  return (['ec-p256', 'rsa-2048', 'ed25519'] as KeyAlg[]).find((a) => {
    const m = KEY_ALGS[a].mechanism;
    return listed.has(m) && (token.lib.C_GetMechanismInfo(token.slot, m).flags & CKF_GENERATE_KEY_PAIR) !== 0;
  });
}

/**
 * A token we may log out of. C_Logout invalidates every private-object handle the application holds, even
 * after logging in again (v2.40 §5.6 C_Logout; SoftHSM does exactly that), so we use a spare token when the
 * driver has one, and the main token only when no suite holds objects on it.
 */
interface LoginControl {
  token: Token;
  pin: string;
  logout(): void;
  login(): void;
  done(): void;
}

function loginControl(ctx: SuiteContext, c: CaseHandle): LoginControl {
  const pk = ctx.connections.pkcs11!;
  const spare = pk.spareTokens?.[0];
  if (spare) {
    const t = Token.open(pk.modulePath, spare.token, spare.pin);
    t.login();
    return control(t, spare.pin, () => {
      t.objects.cleanup();
      t.close();
    });
  }
  const main = ctx.token!;
  if (main.objects.trackedCount > 0)
    c.skip(`${main.objects.trackedCount} objects of earlier suites are open on the token and C_Logout would invalidate their handles`);
  return control(main, pk.pin, () => {});
}

function control(t: Token, pin: string, close: () => void): LoginControl {
  const login = () => {
    try {
      t.lib.C_Login(t.session, pkcs11.CKU_USER, pin);
    } catch (err) {
      if (!isCkr(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN)) throw err;
    }
  };
  return {
    token: t,
    pin,
    login,
    logout: () => t.lib.C_Logout(t.session),
    done: () => {
      login();
      close();
    },
  };
}

/** A wrong PIN of the same length (so it is not rejected as CKR_PIN_LEN_RANGE instead). */
function wrongPinFor(pin: string): string {
  const last = pin.at(-1)!;
  const other = /[0-9]/.test(last) ? String((Number(last) + 1) % 10) : last === 'a' ? 'b' : 'a';
  return pin.slice(0, -1) + other;
}

interface SessionsState {
  token: Token;
  /** The cheapest key type the token generates, for the cases that need a key. */
  alg?: KeyAlg;
}

function needKey(c: CaseHandle, s: SessionsState): KeyAlg {
  return s.alg ?? c.unsupported('the token advertises no key pair generation for RSA, EC or Ed25519');
}

async function notLoggedInCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): Promise<void> {
  const a = needKey(c, state);
  const lc = loginControl(ctx, c);
  let before: KeyPair | undefined;
  try {
    // Its private handle dies with C_Logout; destroyPair finds the pair again by its run CKA_ID afterwards.
    before = await generateKeyPair(lc.token, a, { label: 'hsm-harness-sessions-login' });
    lc.logout();
    // Private objects are invisible to a public session (v2.40 §4.1.2 access to objects).
    const visible = lc.token.find([{ type: pkcs11.CKA_ID, value: before.id }]);
    c.detail('visibleWhenLoggedOut', visible.length);
    try {
      const made = await generateKeyPair(lc.token, a, { label: 'hsm-harness-sessions-nologin' });
      lc.token.objects.destroyPair(made);
      throw new Error('C_GenerateKeyPair of a private key succeeded without a login');
    } catch (err) {
      if (ckrOf(err) === undefined) throw err;
      expectFailure(ctx, c, 'C_GenerateKeyPair', 'private key, not logged in', err, pkcs11.CKR_USER_NOT_LOGGED_IN);
    }
    if (visible.some((h) => h.equals(before!.privateKey)) || visible.length > 1) throw new Error('the private key is visible without a login');
  } finally {
    lc.login();
    // Only objects carrying this run's CKA_ID and label are destroyed, never every handle a find returns.
    lc.token.objects.destroyPair(before);
    lc.done();
  }
}

function wrongPinCase(c: CaseHandle, _state: SessionsState, ctx: SuiteContext): void {
  if (!ctx.connections.pkcs11!.wrongPinAllowed) c.skip(WRONG_PIN_SKIP);
  const lc = loginControl(ctx, c);
  try {
    lc.logout();
    try {
      lc.token.lib.C_Login(lc.token.session, pkcs11.CKU_USER, wrongPinFor(lc.pin));
      throw new Error('C_Login with a wrong PIN succeeded');
    } catch (err) {
      if (ckrOf(err) === undefined) throw err;
      expectFailure(ctx, c, 'C_Login', 'wrong user PIN', err, pkcs11.CKR_PIN_INCORRECT);
    }
  } finally {
    lc.done();
  }
}

async function readOnlySessionCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): Promise<void> {
  const { token } = state;
  const a = needKey(c, state);
  const ro = token.openSession(false);
  try {
    const made = await generateKeyPair(token, a, { session: ro, label: 'hsm-harness-sessions-ro' });
    token.objects.destroyPair(made);
    throw new Error('C_GenerateKeyPair of token objects succeeded in a read-only session');
  } catch (err) {
    if (ckrOf(err) === undefined) throw err;
    expectFailure(ctx, c, 'C_GenerateKeyPair', 'token objects in a read-only session', err, pkcs11.CKR_SESSION_READ_ONLY);
  } finally {
    token.closeSession(ro);
  }
}

async function keyFunctionNotPermittedCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): Promise<void> {
  const { token } = state;
  const a = needKey(c, state);
  const pair = await generateKeyPair(token, a, { label: 'hsm-harness-sessions-nosign', extraPrivate: [{ type: pkcs11.CKA_SIGN, value: false }] });
  if (token.attrBool(pair.privateKey, pkcs11.CKA_SIGN)) {
    // The key the case needs does not exist: that is its own finding, not a C_SignInit that ignores CKA_SIGN.
    token.objects.destroyPair(pair);
    ctx.finding('deviation', "C_GenerateKeyPair ignored the template's CKA_SIGN=false: the private key reads back CKA_SIGN=true (PKCS#11 v2.40 §5.13)");
    c.unsupported('template CKA_SIGN=false ignored: the key reads back CKA_SIGN=true, so C_SignInit on a non-signing key cannot be tried');
  }
  const s = token.openSession();
  try {
    token.lib.C_SignInit(s, schemeForKey(a).mechanism, pair.privateKey);
    throw new Error('C_SignInit accepted a private key with CKA_SIGN=false');
  } catch (err) {
    if (ckrOf(err) === undefined) throw err;
    expectFailure(ctx, c, 'C_SignInit', 'private key with CKA_SIGN=false', err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED);
  } finally {
    token.closeSession(s); // also ends a sign operation, should C_SignInit have wrongly started one
    token.objects.destroyPair(pair);
  }
}

async function bufferTooSmallCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): Promise<void> {
  const { token } = state;
  const a = needKey(c, state);
  const pair = await generateKeyPair(token, a, { label: 'hsm-harness-sessions-buffer' });
  const s = token.openSession();
  try {
    const scheme = schemeForKey(a);
    const data = randomBytes(100);
    const input = scheme.input(data);
    token.lib.C_SignInit(s, scheme.mechanism, pair.privateKey);
    try {
      await token.lib.C_SignAsync(s, input, Buffer.alloc(10));
      throw new Error('C_Sign returned a signature in a 10-byte buffer');
    } catch (err) {
      if (ckrOf(err) === undefined) throw err;
      expectFailure(ctx, c, 'C_Sign', '10-byte output buffer', err, pkcs11.CKR_BUFFER_TOO_SMALL);
    }
    // v2.40 §5.2: CKR_BUFFER_TOO_SMALL does not end the operation; the same call with room must succeed.
    let sig: Buffer;
    try {
      sig = await token.lib.C_SignAsync(s, input, Buffer.alloc(1024));
    } catch (err) {
      const code = ckrOf(err);
      throw new Error(
        `the retry with a large buffer failed with ${code !== undefined ? ckrName(code) : (err as Error).message}: the operation was lost after CKR_BUFFER_TOO_SMALL`,
      );
    }
    c.detail('signatureBytes', sig.length);
    if (!scheme.verify(publicKeyObject(token, pair.publicKey), data, sig)) throw new Error('the signature from the retry does not verify with node:crypto');
  } finally {
    token.closeSession(s);
    token.objects.destroyPair(pair);
  }
}

function sessionCountCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): void {
  const { token } = state;
  const info = token.tokenInfo();
  const max = sessionLimit(info.maxSessionCount);
  const open = sessionLimit(info.sessionCount);
  // Sessions already open (ours); when the token does not say, assume the main session only.
  const already = typeof open === 'number' ? open : 1;
  const target = typeof max === 'number' ? Math.min(max - already, 16) : 16;
  c.detail('maxSessionCount', max);
  c.detail('alreadyOpen', already);
  const sessions: Handle[] = [];
  try {
    for (let i = 0; i < target; i++) sessions.push(token.openSession(false));
  } catch (err) {
    const code = ckrOf(err);
    if (code !== undefined) c.ckr(code);
    throw new Error(
      `C_OpenSession failed after ${sessions.length} extra sessions (the token allows ${max}): ${code !== undefined ? ckrName(code) : (err as Error).message}`,
    );
  } finally {
    c.detail('opened', sessions.length);
    ctx.report.info.sessionsProbed = already + sessions.length;
    for (const s of sessions) token.closeSession(s);
  }
}

function randomCase(c: CaseHandle, state: SessionsState, ctx: SuiteContext): void {
  const { token } = state;
  let a: Buffer;
  let b: Buffer;
  try {
    a = token.lib.C_GenerateRandom(token.session, Buffer.alloc(32));
    b = token.lib.C_GenerateRandom(token.session, Buffer.alloc(32));
  } catch (err) {
    const code = ckrOf(err);
    if (code === pkcs11.CKR_FUNCTION_NOT_SUPPORTED || code === pkcs11.CKR_RANDOM_NO_RNG) {
      ctx.capability('random', false);
      c.ckr(code);
      c.unsupported(`C_GenerateRandom returned ${ckrName(code)}`);
    }
    throw err;
  }
  // Two 32-byte draws that are equal (or all zero) mean the generator is not working.
  const ok = a.length === 32 && b.length === 32 && !a.equals(b) && a.some((x) => x !== 0);
  ctx.capability('random', ok);
  if (!ok) throw new Error('C_GenerateRandom returned the same or empty 32 bytes twice');
}

export const sessionsSuite: Suite<SessionsState> = {
  name: 'sessions',
  title: 'Sessions, login and error codes (golden values per token)',
  needs: 'pkcs11',
  setup: (ctx) => ({ token: ctx.token!, alg: cheapestAlg(ctx.token!) }),
  cases: [
    { name: 'not-logged-in', run: notLoggedInCase },
    { name: 'wrong-pin', run: wrongPinCase },
    { name: 'read-only-session', run: readOnlySessionCase },
    { name: 'key-function-not-permitted', run: keyFunctionNotPermittedCase },
    { name: 'buffer-too-small', run: bufferTooSmallCase },
    { name: 'session-count', run: sessionCountCase },
    { name: 'random', run: randomCase },
  ],
};
