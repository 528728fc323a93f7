/**
 * Removes journalled objects from a token in a process of its own: the module may be the one that just hung
 * or crashed, so the parent bounds this process with a kill timer. The driver is started again only to read
 * its connection (module path, token, PIN from the same environment as the run); the token must be the one
 * the journal names (module path, label and serial), and only objects carrying a journalled CKA_ID and the
 * harness label prefix are destroyed.
 */
import { driverById } from '../registry.js';
import { loadReportWords } from '../report-words.js';
import { Token } from '../pkcs11/token.js';
import { trimPadded } from '../pkcs11/module.js';
import type { TokenObjects } from '../journal.js';
import { describeError } from '../errors.js';
import { redactFreeText } from '../secrets.js';

export interface CleanupRequest {
  driver: string;
  tokens: TokenObjects[];
}
export interface CleanupReply {
  gone: { token: TokenObjects['token']; id: string }[];
  /** Label prefixes under which nothing is left. */
  labelledGone?: { token: TokenObjects['token']; prefix: string }[];
  /** Signer directories whose recorded keys are no longer on the token. */
  signerKeysGone?: { token: TokenObjects['token']; dir: string }[];
  failed: { token: TokenObjects['token']; id: string; error: string }[];
}

async function clean(req: CleanupRequest): Promise<CleanupReply> {
  const reply: CleanupReply = { gone: [], failed: [] };
  const fail = (t: TokenObjects, error: string) => {
    for (const o of t.objects) reply.failed.push({ token: t.token, id: o.id, error });
    for (const x of t.signers) reply.failed.push({ token: t.token, id: `keys of ${x.signer}`, error });
  };
  await loadReportWords();
  const driver = await driverById(req.driver);
  if (!driver) {
    for (const t of req.tokens) fail(t, `driver "${req.driver}" is unknown to this version of hsm-harness`);
    return reply;
  }
  const probe = await driver.probe(process.env).catch((err) => ({ ok: false, reason: describeError(err) }));
  if (!probe.ok) {
    for (const t of req.tokens) fail(t, `driver ${req.driver} is not configured here (${probe.reason}); run hsm-harness cleanup with the run's environment`);
    return reply;
  }
  const started = await driver.start(process.env);
  try {
    const pk = started.connections.pkcs11;
    if (!pk) {
      for (const t of req.tokens) fail(t, `driver ${req.driver} has no PKCS#11 connection`);
      return reply;
    }
    Object.assign(process.env, pk.env);
    for (const t of req.tokens) {
      if (pk.modulePath !== t.token.modulePath) {
        fail(t, `the driver now uses module ${pk.modulePath}, not ${t.token.modulePath}`);
        continue;
      }
      let token: Token;
      try {
        token = Token.open(pk.modulePath, { label: t.token.label }, pk.pin);
      } catch (err) {
        fail(t, describeError(err));
        continue;
      }
      try {
        const serial = trimPadded(token.tokenInfo().serialNumber);
        if (serial !== t.token.serial) {
          fail(t, `token "${t.token.label}" now has serial ${serial}, not ${t.token.serial}: not the token of the run`);
          continue;
        }
        token.login();
        for (const prefix of t.labelled) {
          try {
            token.objects.removeLabelled(prefix);
            (reply.labelledGone ??= []).push({ token: t.token, prefix });
          } catch (err) {
            reply.failed.push({ token: t.token, id: `label ${prefix}…`, error: describeError(err) });
          }
        }
        for (const x of t.signers.filter((x) => x.keys)) {
          try {
            token.objects.removeSignerKeys(x.keys!);
            (reply.signerKeysGone ??= []).push({ token: t.token, dir: x.dir });
          } catch (err) {
            reply.failed.push({ token: t.token, id: `keys of ${x.signer}`, error: describeError(err) });
          }
        }
        for (const o of t.objects) {
          try {
            token.objects.removeLeftover(Buffer.from(o.id, 'hex'));
            reply.gone.push({ token: t.token, id: o.id });
          } catch (err) {
            reply.failed.push({ token: t.token, id: o.id, error: describeError(err) });
          }
        }
      } finally {
        token.close();
      }
    }
  } finally {
    await started.stop().catch(() => undefined);
  }
  return reply;
}

process.once('message', (req: CleanupRequest) => {
  clean(req).then(
    (reply) => {
      process.send?.(redactFreeText(reply));
      process.exit(0);
    },
    (err) => {
      const error = describeError(err);
      const failed = req.tokens.flatMap((t) =>
        [...t.objects.map((o) => o.id), ...t.signers.map((x) => `keys of ${x.signer}`)].map((id) => ({ token: t.token, id, error })),
      );
      const reply: CleanupReply = { gone: [], failed };
      process.send?.(redactFreeText(reply));
      process.exit(1);
    },
  );
});
