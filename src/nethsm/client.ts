/**
 * A small client for the NetHSM REST API (Nitrokey/nethsm docs/nethsm-api.yaml): health,
 * provisioning, users, keys, signing, backup, restore and unlock. node:https only.
 *
 * TLS: a NetHSM answers with its own self-signed certificate. `{ insecure: true }` turns verification off
 * and is meant only for a container the harness started itself on loopback; `{ ca }` verifies against a
 * given certificate (a device whose certificate was replaced, or the self-signed one pinned as its own CA).
 * Passphrases travel only in the Authorization header and in request bodies, never in errors.
 */
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { redact } from '../secrets.js';

export type NethsmState = 'Unprovisioned' | 'Locked' | 'Operational';
export type NethsmTls = { insecure: true } | { ca: string };
export interface Credentials {
  user: string;
  passphrase: string;
}
export type UserRole = 'Administrator' | 'Operator' | 'Metrics' | 'Backup';
export type KeyType = 'RSA' | 'Curve25519' | 'EC_P256' | 'EC_P384' | 'EC_P521';
export type SignMode = 'PKCS1' | 'PSS_SHA256' | 'PSS_SHA384' | 'PSS_SHA512' | 'EdDSA' | 'ECDSA';

export class NethsmError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    serverMessage: string,
  ) {
    super(redact(`NetHSM ${method} ${path} answered ${status}${serverMessage ? `: ${serverMessage}` : ''}`));
    this.name = 'NethsmError';
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface RequestOptions {
  auth?: Credentials;
  json?: unknown;
  body?: Buffer;
  contentType?: string;
  accept?: string;
  /** Statuses that count as success (default: any 2xx). */
  expect?: number[];
}

/** RFC 3339 UTC time without fractions, as the NetHSM wants it (`2018-10-30T11:20:50Z`). */
export function systemTime(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class NethsmClient {
  /** baseUrl ends in /api/v1, e.g. https://127.0.0.1:32768/api/v1 */
  constructor(
    readonly baseUrl: string,
    private readonly tls: NethsmTls,
    private readonly timeoutMs = 30_000,
  ) {}

  async call(method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
    const url = new URL(this.baseUrl.replace(/\/$/, '') + path);
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    let body: Buffer | undefined = opts.body;
    if (opts.json !== undefined) {
      body = Buffer.from(JSON.stringify(opts.json));
      headers['content-type'] = 'application/json';
    } else if (opts.contentType) {
      headers['content-type'] = opts.contentType;
    }
    if (body) headers['content-length'] = String(body.length);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.passphrase}`).toString('base64')}`;
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          headers,
          timeout: this.timeoutMs,
          ...('insecure' in this.tls ? { rejectUnauthorized: false } : { ca: this.tls.ca, checkServerIdentity: () => undefined }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`NetHSM ${method} ${path}: no answer within ${this.timeoutMs / 1000} s`)));
      req.on('error', reject);
      req.end(body);
    });
    const ok = opts.expect ? opts.expect.includes(reply.status) : reply.status >= 200 && reply.status < 300;
    if (!ok) throw new NethsmError(method, path, reply.status, serverMessage(reply.body));
    return reply;
  }

  private async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const r = await this.call(method, path, opts);
    return JSON.parse(r.body.toString('utf8')) as T;
  }

  async state(): Promise<NethsmState> {
    return (await this.json<{ state: NethsmState }>('GET', '/health/state')).state;
  }

  /** Poll /health/state until it is one of `wanted` (connection errors count as "not yet"). */
  async waitForState(wanted: NethsmState[], timeoutMs = 60_000): Promise<NethsmState> {
    const until = Date.now() + timeoutMs;
    let last = 'no answer';
    for (;;) {
      try {
        const s = await this.state();
        if (wanted.includes(s)) return s;
        last = s;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > until)
        throw new Error(`NetHSM at ${this.baseUrl} did not reach ${wanted.join('/')} within ${timeoutMs / 1000} s (last: ${redact(last)})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  info(): Promise<{ vendor: string; product: string }> {
    return this.json('GET', '/info');
  }

  async provision(p: { unlockPassphrase: string; adminPassphrase: string; systemTime: string }): Promise<void> {
    await this.call('POST', '/provision', { json: p });
  }

  async unlock(passphrase: string): Promise<void> {
    await this.call('POST', '/unlock', { json: { passphrase } });
  }

  async addUser(admin: Credentials, userId: string, u: { realName: string; role: UserRole; passphrase: string }): Promise<void> {
    await this.call('PUT', `/users/${encodeURIComponent(userId)}`, { auth: admin, json: u });
  }

  async setBackupPassphrase(admin: Credentials, newPassphrase: string, currentPassphrase = ''): Promise<void> {
    await this.call('PUT', '/config/backup-passphrase', { auth: admin, json: { newPassphrase, currentPassphrase } });
  }

  /** Generate a key pair; returns its ID (the one asked for, or the server's). */
  async generateKey(admin: Credentials, k: { mechanisms: string[]; type: KeyType; length?: number; id?: string }): Promise<string> {
    const r = await this.call('POST', '/keys/generate', { auth: admin, json: k });
    const text = r.body.toString('utf8');
    if (text) return (JSON.parse(text) as { id: string }).id;
    const loc = String(r.headers.location ?? '');
    return decodeURIComponent(loc.slice(loc.lastIndexOf('/') + 1));
  }

  async publicKeyPem(cred: Credentials, keyId: string): Promise<string> {
    return (await this.call('GET', `/keys/${encodeURIComponent(keyId)}/public.pem`, { auth: cred, accept: 'application/x-pem-file' })).body.toString('utf8');
  }

  /** `message` as the mode wants it: the hash for ECDSA/PSS, DigestInfo ‖ hash for PKCS1, the data for EdDSA. */
  async sign(operator: Credentials, keyId: string, mode: SignMode, message: Buffer): Promise<Buffer> {
    const r = await this.json<{ signature: string }>('POST', `/keys/${encodeURIComponent(keyId)}/sign`, {
      auth: operator,
      json: { mode, message: message.toString('base64') },
    });
    return Buffer.from(r.signature, 'base64');
  }

  async deleteKey(admin: Credentials, keyId: string): Promise<void> {
    await this.call('DELETE', `/keys/${encodeURIComponent(keyId)}`, { auth: admin, expect: [204, 404] });
  }

  async backup(backupUser: Credentials): Promise<Buffer> {
    return (await this.call('POST', '/system/backup', { auth: backupUser, accept: 'application/octet-stream' })).body;
  }

  /**
   * Restore a backup. On an Unprovisioned NetHSM no credentials are needed; the result is Locked and is
   * unlocked with the original unlock passphrase. Body: multipart/form-data, JSON arguments then the file.
   */
  async restore(backupPassphrase: string, time: string, data: Buffer, admin?: Credentials): Promise<void> {
    const boundary = `hsm-harness-${randomBytes(12).toString('hex')}`;
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="arguments"\r\nContent-Type: application/json\r\n\r\n`),
      Buffer.from(JSON.stringify({ backupPassphrase, systemTime: time })),
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Disposition: form-data; name="backup_file"; filename="backup.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    await this.call('POST', '/system/restore', { auth: admin, body, contentType: `multipart/form-data; boundary=${boundary}` });
  }
}

function serverMessage(body: Buffer): string {
  try {
    const m = (JSON.parse(body.toString('utf8')) as { message?: unknown }).message;
    return typeof m === 'string' ? m.slice(0, 200) : '';
  } catch {
    return body.toString('utf8').slice(0, 200).replace(/\s+/g, ' ');
  }
}
