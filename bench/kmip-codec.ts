/**
 * KMIP TTLV codec throughput: encode and decode of a Cascade-shaped batched Sign request (8 items of
 * RRSIG-sized data, each with a Unique Batch Item ID and Cryptographic Parameters), in MB/s of TTLV bytes.
 * Called by the benchmark helper; no network.
 */
import { Bench } from 'tinybench';
import { randomBytes } from 'node:crypto';
import { decode, encode } from '../src/kmip/ttlv.js';
import { E } from '../src/kmip/tags.js';
import { bytes, cryptoParams, requestMessage, text } from '../src/kmip/messages.js';

export async function benchKmipCodec(opts: { timeMs?: number } = {}): Promise<{ encodeMBps: number; decodeMBps: number; messageBytes: number }> {
  const message = requestMessage(
    { version: { major: 1, minor: 2 }, credential: { username: 'bench-token', password: 'not-a-secret' } },
    Array.from({ length: 8 }, () => ({
      operation: E('Operation', 'Sign'),
      uniqueBatchItemId: randomBytes(16),
      payload: [
        text('Unique Identifier', '0123456789ABCDEF0123456789ABCDEF01234567_priv'),
        cryptoParams({ hashing: 'SHA-256', padding: 'PKCS1 v1.5', algorithm: 'RSA' }),
        bytes('Data', randomBytes(160)),
      ],
    })),
  );
  const wire = encode(message);
  const time = opts.timeMs ?? 500;
  const bench = new Bench({ time, warmupTime: Math.min(100, time / 5), throws: true });
  let sink = 0;
  bench.add('encode', () => {
    sink += encode(message).length;
  });
  bench.add('decode', () => {
    sink += decode(wire).tag;
  });
  await bench.run();
  const mbps = (name: string) => {
    const t = bench.getTask(name)!;
    const r = t.result;
    if (r.state !== 'completed') throw new Error(`kmip codec ${name} benchmark ended in state ${r.state}`);
    return Math.round((wire.length / (r.latency.mean / 1000) / 1e6) * 10) / 10;
  };
  if (sink < 0) throw new Error('unreachable'); // keeps the work observable
  return { encodeMBps: mbps('encode'), decodeMBps: mbps('decode'), messageBytes: wire.length };
}
