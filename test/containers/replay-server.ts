/**
 * A local HTTPS server on 127.0.0.1 that replays fixtures/nethsm/exchange.json.
 *
 * TEST FIXTURE, NOT A NETHSM: it stands in for the NetHSM container where its image cannot be pulled. The
 * recording was written from the same reading of the NetHSM API as the suite, so it checks request order and
 * parsing, never NetHSM behaviour. It answers the recorded responses in order and checks every request against the
 * recording: method and path, Basic-auth user, the OpenAPI schema of the body (fixtures/nethsm/
 * openapi-schemas.json, additional properties refused as the NetHSM does) and the fields that must match
 * exactly (key IDs, sign modes, the message to sign). Any difference is answered with 400 and recorded.
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { join } from 'node:path';
import { validate } from './openapi.js';

export interface ExchangeEntry {
  request: {
    method: string;
    path: string;
    auth?: string;
    schema?: string;
    body?: Record<string, unknown>;
    multipart?: { schema: string; fileBase64: string };
  };
  response: { status: number; json?: unknown; text?: string; base64?: string; contentType?: string; headers?: Record<string, string> };
  responseSchema?: string;
}

export interface Exchange {
  message: string;
  primary: ExchangeEntry[];
  fresh: ExchangeEntry[];
}

export function loadExchange(): Exchange {
  return JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'nethsm', 'exchange.json'), 'utf8')) as Exchange;
}

/** What the server saw, for assertions after the run (passphrases included: the test checks they line up). */
export interface SeenRequest {
  method: string;
  path: string;
  user?: string;
  passphrase?: string;
  json?: Record<string, unknown>;
  multipartJson?: Record<string, unknown>;
}

export interface ReplayServer {
  baseUrl: string;
  seen: SeenRequest[];
  problems: string[];
  remaining(): number;
  close(): Promise<void>;
}

export async function startReplayServer(entries: ExchangeEntry[], tls: { key: string; cert: string }): Promise<ReplayServer> {
  const seen: SeenRequest[] = [];
  const problems: string[] = [];
  let next = 0;
  const server: Server = createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? '').replace(/^\/api\/v1/, '');
      const s: SeenRequest = { method: req.method ?? '', path };
      const auth = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      if (auth) {
        const text = Buffer.from(auth[1]!, 'base64').toString('utf8');
        s.user = text.slice(0, text.indexOf(':'));
        s.passphrase = text.slice(text.indexOf(':') + 1);
      }
      const entry = entries[next];
      const fail = (why: string) => {
        problems.push(`#${next} ${s.method} ${path}: ${why}`);
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `replay: ${why}` }));
      };
      seen.push(s);
      if (!entry) return fail('no more recorded requests');
      const want = entry.request;
      if (want.method !== s.method || want.path !== path) return fail(`expected ${want.method} ${want.path}`);
      if ((want.auth ?? undefined) !== s.user) return fail(`expected Basic user ${want.auth ?? '(none)'}, got ${s.user ?? '(none)'}`);
      if (s.user !== undefined && !s.passphrase) return fail('empty passphrase');
      if (want.schema) {
        if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return fail('body is not application/json');
        try {
          s.json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail('body is not JSON');
        }
        const bad = validate(want.schema, s.json);
        if (bad.length) return fail(bad.join('; '));
        for (const [k, v] of Object.entries(want.body ?? {})) {
          if (!isDeepStrictEqual(s.json[k], v)) return fail(`${k} is ${JSON.stringify(s.json[k])}, expected ${JSON.stringify(v)}`);
        }
      }
      if (want.multipart) {
        const parts = parseMultipart(req.headers['content-type'] ?? '', body);
        if (parts?.length !== 2) return fail('expected multipart/form-data with two parts');
        try {
          s.multipartJson = JSON.parse(parts[0]!.toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail('first part is not JSON');
        }
        const bad = validate(want.multipart.schema, s.multipartJson);
        if (bad.length) return fail(bad.join('; '));
        if (!parts[1]!.equals(Buffer.from(want.multipart.fileBase64, 'base64'))) return fail('second part is not the backup that was served');
      }
      next++;
      const r = entry.response;
      const headers: Record<string, string> = { ...(r.headers ?? {}) };
      let out: Buffer = Buffer.alloc(0);
      if (r.json !== undefined) {
        out = Buffer.from(JSON.stringify(r.json));
        headers['content-type'] = 'application/json';
      }
      if (r.text !== undefined) {
        out = Buffer.from(r.text);
        headers['content-type'] = r.contentType ?? 'text/plain';
      }
      if (r.base64 !== undefined) {
        out = Buffer.from(r.base64, 'base64');
        headers['content-type'] = r.contentType ?? 'application/octet-stream';
      }
      res.writeHead(r.status, headers).end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `https://127.0.0.1:${port}/api/v1`,
    seen,
    problems,
    remaining: () => entries.length - next,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The parts of a multipart/form-data body, headers stripped. */
function parseMultipart(contentType: string, body: Buffer): Buffer[] | undefined {
  const m = /boundary=("?)([^";]+)\1/.exec(contentType);
  if (!/^multipart\/form-data/.test(contentType) || !m) return undefined;
  const delimiter = Buffer.from(`--${m[2]}`);
  const parts: Buffer[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const end = body.indexOf(delimiter, start);
    if (end < 0) return undefined;
    const part = body.subarray(start + 2, end - 2); // skip CRLF after the delimiter and before the next one
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) return undefined;
    parts.push(part.subarray(headerEnd + 4));
    pos = end;
  }
  return parts;
}
