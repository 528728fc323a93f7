/**
 * A tiny loopback KMIP-over-TLS server for what PyKMIP cannot produce: a server the harness did not start
 * (to prove no load reaches it), one that rejects every credential, one that answers with a huge Big
 * Integer, one that keeps a logged-in session for everyone after one good login. It answers each framed
 * request with whatever `respond` returns, closes the connection on undecodable input, and counts connections and
 * requests. Certificates come from the harness's own throwaway PKI (src/kmip/pki.ts).
 */
import tls from 'node:tls';
import { mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { makeTestPki } from '../../src/kmip/pki.js';
import { decode, encode, frameLength, type Item } from '../../src/kmip/ttlv.js';
import { dateTime, enumItem, int, struct, text } from '../../src/kmip/messages.js';
import { T } from '../../src/kmip/tags.js';

export interface FakeKmipServer {
  host: string;
  port: number;
  ca: string;
  connections: number;
  requests: Item[];
  close(): Promise<void>;
}

/** A Response Message with one Batch Item for the request's first operation. */
export function responseFor(request: Item, result: { status: 'Success' | 'Operation Failed'; reason?: string; message?: string; payload?: Item[] }): Item {
  const batch = (request.value as Item[]).find((i) => i.tag === T('Batch Item'));
  const op = (batch?.value as Item[] | undefined)?.find((i) => i.tag === T('Operation'));
  return struct('Response Message', [
    struct('Response Header', [
      struct('Protocol Version', [int('Protocol Version Major', 1), int('Protocol Version Minor', 2)]),
      dateTime('Time Stamp', BigInt(Math.floor(Date.now() / 1000))),
      int('Batch Count', 1),
    ]),
    struct('Batch Item', [
      ...(op ? [op] : []),
      enumItem('Result Status', result.status),
      ...(result.reason ? [enumItem('Result Reason', result.reason)] : []),
      ...(result.message ? [text('Result Message', result.message)] : []),
      ...(result.payload ? [struct('Response Payload', result.payload)] : []),
    ]),
  ]);
}

/** The Username and Password of a request's header, when it has a credential. */
export function credentialOf(request: Item): { username?: string; password?: string } | undefined {
  const find = (items: Item[] | undefined, tag: string) => items?.find((i) => i.tag === T(tag));
  const header = find(request.value as Item[], 'Request Header');
  const auth = find(header?.value as Item[] | undefined, 'Authentication');
  const value = find(find(auth?.value as Item[] | undefined, 'Credential')?.value as Item[] | undefined, 'Credential Value')?.value as Item[] | undefined;
  if (!value) return undefined;
  return { username: find(value, 'Username')?.value as string | undefined, password: find(value, 'Password')?.value as string | undefined };
}

/** The Operation of a request's first Batch Item. */
export function operationOf(request: Item): number | undefined {
  const batch = (request.value as Item[]).find((i) => i.tag === T('Batch Item'));
  return (batch?.value as Item[] | undefined)?.find((i) => i.tag === T('Operation'))?.value as number | undefined;
}

export async function startFakeKmipServer(dir: string, respond: (request: Item) => Item | Buffer): Promise<FakeKmipServer> {
  mkdirSync(dir, { recursive: true });
  const pki = await makeTestPki(dir);
  const state = { connections: 0, requests: [] as Item[] };
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), minVersion: 'TLSv1.2' }, (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // Hostile input (kmip-robustness probes) closes the connection, as a careful server would; it never throws here.
      if (buf.length >= 8 && frameLength(buf) > 16 << 20) return void socket.destroy();
      while (buf.length >= 8 && buf.length >= frameLength(buf)) {
        const n = frameLength(buf);
        let req: Item;
        try {
          req = decode(buf.subarray(0, n), { maxBytes: 16 << 20 });
        } catch {
          return void socket.destroy();
        }
        buf = buf.subarray(n);
        state.requests.push(req);
        const r = respond(req);
        socket.write(Buffer.isBuffer(r) ? r : encode(r, { maxBytes: 16 << 20 }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    ca: pki.ca,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  } as FakeKmipServer;
}
