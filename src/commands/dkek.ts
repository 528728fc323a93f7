/**
 * `hsm-harness dkek …`: SmartCard-HSM DKEK material offline (src/dkek). Passwords come only from env:VAR,
 * file:PATH or, for n-of-m split passwords, shares:FILE (the printed password shares; `shares:-` = stdin).
 * Secrets are never printed unless --reveal asks for them.
 */
import { INPUT_LIMITS, formatBytes, readInputFile } from '../input.js';
import { existsSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Command } from './types.js';
import { parse } from './args.js';
import { UsageError } from '../errors.js';
import { readSecretSource, registerSecret, wipe } from '../secrets.js';
import { writeFileAtomic } from '../fsutil.js';
import { Dkek, DkekError, DkekVerifyError, formatKcv, kcvOf } from '../dkek/dkek.js';
import { createShareFile, decryptShareFile, type Password } from '../dkek/share.js';
import { combinePassword, formatPasswordShare, colonHex, parsePasswordShares, randomSharePassword, splitPassword } from '../dkek/pwdshares.js';
import { blobFromFile } from '../dkek/wrapfile.js';
import { verifyBlob, wipeKey, type BlobReport } from '../dkek/verify.js';

const USAGE = `hsm-harness dkek <subcommand> [options]   (every subcommand takes --json)
  share-create  --out FILE --password SRC             create a DKEK share file (sc-hsm-tool compatible)
  share-decrypt FILE --password SRC [--reveal]        decrypt a share file; print its KCV (the share only with --reveal)
  pwd-split     --threshold T --total N --out FILE    create a share file under a random 8-byte password split T-of-N;
                                                      print the password shares as sc-hsm-tool does
  pwd-combine   [FILE|-] [--share FILE] [--reveal]    combine printed password shares (file or stdin); with --share,
                                                      decrypt that share file with the result and print its KCV
  kcv           --share FILE --password SRC [--share FILE --password SRC ...]
                                                      KCV of the DKEK assembled from the shares
  blob-verify   --wrap FILE --share FILE --password SRC [...] [--public-key PEM]
                                                      check a wrapped key offline; exit 1 if it is not restorable
                                                      (other DKEK, bad CMAC, a failed check), 2 for bad input
SRC is env:VAR, file:PATH, or shares:FILE / shares:- for a password split into n-of-m shares.
Give one --password per --share (in the same order), or one for all.`;

/** Run a library call, turning its one-line DkekError into a UsageError (exit 2). */
async function guard<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DkekError) throw new UsageError(`dkek: ${err.message}`);
    throw err;
  }
}

/** Share files, password shares, wrapped keys and public keys are a few KiB at most: anything larger is refused. */
async function readInput(path: string, what: string): Promise<Buffer> {
  const limit = INPUT_LIMITS.keyFile;
  if (path === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of process.stdin) {
      size += (c as Buffer).length;
      if (size > limit) throw new UsageError(`dkek: ${what} on standard input is larger than ${formatBytes(limit)}; give the right file`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }
  try {
    return await readInputFile(path, limit, what);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`dkek: ${err.message}`);
    throw err;
  }
}

interface ResolvedPassword {
  password: Password;
  fromShares?: number;
}

async function resolvePassword(source: string, what: string): Promise<ResolvedPassword> {
  if (source.startsWith('shares:')) {
    const text = (await readInput(source.slice(7), 'password shares')).toString('utf8');
    const set = await guard(() => parsePasswordShares(text));
    const pw = await guard(() => combinePassword(set));
    registerSecret(pw.toString('hex'));
    return { password: pw, fromShares: set.shares.length };
  }
  return { password: await readSecretSource(source, what) };
}

function wipePassword(p: ResolvedPassword): void {
  if (typeof p.password !== 'string') wipe(p.password);
}

/** Decrypt every --share with its --password; returns the raw shares (the caller wipes them). */
async function decryptShares(files: string[], sources: string[]): Promise<Buffer[]> {
  if (files.length === 0) throw new UsageError('dkek: give at least one --share FILE with its --password');
  if (sources.length !== files.length && sources.length !== 1) {
    throw new UsageError(`dkek: ${files.length} --share but ${sources.length} --password; give one --password per --share, in the same order, or one for all`);
  }
  const shares: Buffer[] = [];
  try {
    for (let i = 0; i < files.length; i++) {
      const file = await readInput(files[i]!, 'share file');
      const pw = await resolvePassword(sources[sources.length === 1 ? 0 : i]!, `--password for ${files[i]}`);
      try {
        shares.push(
          await guard(() => {
            try {
              return decryptShareFile(file, pw.password, files[i]!);
            } catch (err) {
              if (err instanceof DkekError && pw.fromShares !== undefined && /wrong password/.test(err.message)) {
                throw new DkekError(
                  `${files[i]}: wrong password or corrupted share file (password combined from ${pw.fromShares} password shares: too few or wrong shares?)`,
                );
              }
              throw err;
            }
          }),
        );
      } finally {
        wipePassword(pw);
      }
    }
  } catch (err) {
    wipe(...shares);
    throw err;
  }
  return shares;
}

function out(json: boolean, data: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${text}\n`);
}

async function refuseOverwrite(path: string): Promise<void> {
  if (existsSync(path)) throw new UsageError(`dkek: ${path} already exists; choose a new file name (a share file is never overwritten)`);
}

const sub: Record<string, (argv: string[]) => Promise<number>> = {
  async 'share-create'(argv) {
    const { values } = parse('dkek share-create', argv, { out: { type: 'string' }, password: { type: 'string' }, json: { type: 'boolean', default: false } });
    if (!values.out || !values.password) throw new UsageError('dkek share-create: give --out FILE and --password env:VAR|file:PATH');
    await refuseOverwrite(values.out);
    const pw = await resolvePassword(values.password, '--password');
    const { file, share } = await guard(() => createShareFile(pw.password));
    wipePassword(pw);
    const kcv = formatKcv(kcvOf(share));
    wipe(share);
    await writeFileAtomic(values.out, file);
    out(values.json, { file: values.out, kcv }, `DKEK share created and saved to ${values.out}\nKCV of this share alone: ${kcv}`);
    return 0;
  },

  async 'share-decrypt'(argv) {
    const { values, positionals } = parse(
      'dkek share-decrypt',
      argv,
      { password: { type: 'string' }, reveal: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
      true,
    );
    if (positionals.length !== 1 || !values.password) throw new UsageError('dkek share-decrypt: give one share FILE and --password env:VAR|file:PATH');
    const [share] = await decryptShares(positionals, [values.password]);
    const kcv = formatKcv(kcvOf(share!));
    const revealed = values.reveal ? share!.toString('hex') : undefined;
    wipe(share);
    out(
      values.json,
      { file: positionals[0], kcv, ...(revealed ? { share: revealed } : {}) },
      `KCV of this share alone: ${kcv}${revealed ? `\nshare: ${revealed}` : ''}`,
    );
    return 0;
  },

  async 'pwd-split'(argv) {
    const { values } = parse('dkek pwd-split', argv, {
      threshold: { type: 'string' },
      total: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    const t = Number(values.threshold),
      n = Number(values.total);
    if (!values.out || !Number.isInteger(t) || !Number.isInteger(n)) throw new UsageError('dkek pwd-split: give --threshold T --total N --out FILE');
    await refuseOverwrite(values.out);
    const password = randomSharePassword();
    const set = await guard(() => splitPassword(password, t, n));
    const { file, share } = await guard(() => createShareFile(password));
    wipe(password);
    const kcv = formatKcv(kcvOf(share));
    wipe(share);
    await writeFileAtomic(values.out, file);
    const blocks = set.shares.map((s, i) => `Share ${i + 1} of ${n}\n\n${formatPasswordShare(set, s)}`);
    out(
      values.json,
      { file: values.out, kcv, threshold: t, total: n, prime: colonHex(set.prime), shares: set.shares.map((s) => ({ id: s.id, value: colonHex(s.value) })) },
      [
        `DKEK share created and saved to ${values.out} (KCV of this share alone: ${kcv})`,
        `Its password is 8 random bytes split ${t}-of-${n}; give each custodian one block. Share IDs are decimal; when typing them into sc-hsm-tool, type ids 10 and above in hex (10 = a).`,
        '',
        ...blocks.flatMap((b) => [b, '']),
      ].join('\n'),
    );
    return 0;
  },

  async 'pwd-combine'(argv) {
    const { values, positionals } = parse(
      'dkek pwd-combine',
      argv,
      { share: { type: 'string' }, reveal: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
      true,
    );
    if (positionals.length > 1) throw new UsageError('dkek pwd-combine: give at most one file of password shares (or - for stdin)');
    const source = positionals[0] ?? '-';
    const text = (await readInput(source, 'password shares')).toString('utf8');
    const set = await guard(() => parsePasswordShares(text));
    const pw = await guard(() => combinePassword(set));
    registerSecret(pw.toString('hex'));
    const result: Record<string, unknown> = { shares: set.shares.length };
    const lines = [`password combined from ${set.shares.length} password shares (8 bytes)`];
    try {
      if (values.share) {
        const file = await readInput(values.share, 'share file');
        const share = await guard(() => {
          try {
            return decryptShareFile(file, pw, values.share);
          } catch (err) {
            if (err instanceof DkekError && /wrong password/.test(err.message)) {
              throw new DkekError(
                `${values.share}: wrong password or corrupted share file (password combined from ${set.shares.length} password shares: too few or wrong shares?)`,
              );
            }
            throw err;
          }
        });
        result.kcv = formatKcv(kcvOf(share));
        wipe(share);
        lines.push(`${values.share} decrypts; KCV of this share alone: ${result.kcv}`);
      }
      if (values.reveal) {
        result.password = pw.toString('hex');
        lines.push(`password (hex): ${result.password}`);
      }
    } finally {
      wipe(pw);
    }
    out(values.json, result, lines.join('\n'));
    return 0;
  },

  async kcv(argv) {
    const { values } = parse('dkek kcv', argv, {
      share: { type: 'string', multiple: true },
      password: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    });
    const shares = await decryptShares(values.share ?? [], values.password ?? []);
    const dkek = Dkek.fromShares(shares);
    wipe(...shares);
    const kcv = dkek.kcvHex;
    dkek.wipe();
    out(values.json, { shares: shares.length, kcv }, `DKEK shares          : ${shares.length}\nDKEK key check value : ${kcv}`);
    return 0;
  },

  async 'blob-verify'(argv) {
    const { values } = parse('dkek blob-verify', argv, {
      wrap: { type: 'string' },
      share: { type: 'string', multiple: true },
      password: { type: 'string', multiple: true },
      'public-key': { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (!values.wrap) throw new UsageError('dkek blob-verify: give --wrap FILE (an sc-hsm-tool wrap file or a bare key blob)');
    const data = await readInput(values.wrap, 'wrap file');
    const wrapFile = await guard(() => blobFromFile(data, values.wrap!));
    let expected: KeyObject | undefined;
    if (values['public-key']) {
      const pem = await readInput(values['public-key'], 'public key');
      try {
        expected = createPublicKey(pem.toString('utf8').includes('-----BEGIN') ? pem.toString('utf8') : { key: pem, format: 'der', type: 'spki' });
      } catch {
        throw new UsageError(`dkek blob-verify: ${values['public-key']} is not a public key (PEM or DER SubjectPublicKeyInfo)`);
      }
    }
    const shares = await decryptShares(values.share ?? [], values.password ?? []);
    const dkek = Dkek.fromShares(shares);
    wipe(...shares);
    let report: BlobReport;
    try {
      const r = await guard(() => {
        try {
          return verifyBlob(wrapFile.blob, dkek, { expectedPublicKey: expected, what: values.wrap });
        } catch (err) {
          if (!(err instanceof DkekVerifyError)) throw err;
          // The input was readable; the backup is what fails. Said once, on stdout, with exit 1.
          return { failed: err.message };
        }
      });
      if ('failed' in r) {
        out(values.json, { restorable: false, failure: r.failed }, `Restorable   : NO, ${r.failed}`);
        return 1;
      }
      wipeKey(r.key);
      report = r.report;
    } finally {
      dkek.wipe();
    }
    const extras = { prkd: wrapFile.prkd !== undefined, certificate: wrapFile.certificate !== undefined };
    out(values.json, { ...report, ...extras }, formatReport(report, extras));
    return report.restorable ? 0 : 1;
  },
};

function formatReport(r: BlobReport, extras: { prkd: boolean; certificate: boolean }): string {
  const pub = r.publicKey;
  const pubLine =
    pub.kind === 'ec'
      ? `${pub.curve ?? 'unknown curve'} ${pub.point}`
      : pub.kind === 'rsa'
        ? `RSA ${pub.modulusBits} bits, e = 0x${pub.exponent}`
        : '(secret key: none)';
  return [
    `Key type     : ${r.keyType} (${r.keyTypeName})`,
    `Key size     : ${r.keySize} ${r.keySizeUnit}`,
    `KCV          : ${r.kcv} (matches the shares)`,
    'CMAC         : valid',
    `Public key   : ${pubLine}`,
    ...(pub.spkiSha256 ? [`SPKI SHA-256 : ${pub.spkiSha256}`] : []),
    `Wrap file    : ${extras.prkd ? 'PRKD' : 'no PRKD'}, ${extras.certificate ? 'certificate' : 'no certificate'}`,
    'Checks       :',
    ...r.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` (${c.detail})` : ''}`),
    r.restorable ? 'Restorable   : yes' : 'Restorable   : NO, a check failed',
  ].join('\n');
}

export const dkekCommand: Command = {
  name: 'dkek',
  summary: 'SmartCard-HSM DKEK shares, password splits, KCVs and offline backup verification',
  usage: USAGE,
  async run(argv) {
    const [name, ...rest] = argv;
    const fn = name ? sub[name] : undefined;
    if (!fn)
      throw new UsageError(
        `dkek: ${name ? `unknown subcommand "${name}"` : 'missing subcommand'}; use one of ${Object.keys(sub).join(', ')} (see hsm-harness dkek --help)`,
      );
    return fn(rest);
  },
};
