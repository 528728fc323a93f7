/**
 * `hsm-harness kmip decode <hex|->` prints a TTLV message as JSON (src/kmip/json.ts);
 * `hsm-harness kmip encode <json|->` is its exact inverse and prints hex. "-" reads standard input.
 */
import type { Command } from './types.js';
import { UsageError } from '../errors.js';
import { decode, encode, TtlvError } from '../kmip/ttlv.js';
import { fromJson, toJson, TtlvJsonError } from '../kmip/json.js';

const USAGE = 'hsm-harness kmip decode <hex|->  |  hsm-harness kmip encode <json|->';

async function input(arg: string | undefined, what: string): Promise<string> {
  if (arg === undefined) throw new UsageError(`kmip ${what}: give the input as an argument or "-" for standard input; usage: ${USAGE}`);
  if (arg !== '-') return arg;
  // Streamed rather than readFileSync(0), which fails with EAGAIN on non-blocking pipes.
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const kmipCommand: Command = {
  name: 'kmip',
  summary: 'decode KMIP TTLV hex to JSON, or encode that JSON back to hex',
  usage: USAGE,
  async run(argv) {
    const [sub, arg, ...extra] = argv;
    if (extra.length) throw new UsageError(`kmip: unexpected argument "${extra[0]}"; usage: ${USAGE}`);
    if (sub === 'decode') {
      const text = (await input(arg, 'decode')).replace(/\s+/g, '').replace(/^0x/i, '');
      if (!/^([0-9a-fA-F]{2})+$/.test(text)) throw new UsageError('kmip decode: input is not an even-length hex string; pass the TTLV bytes as hex (whitespace allowed)');
      try {
        process.stdout.write(JSON.stringify(toJson(decode(Buffer.from(text, 'hex'))), null, 2) + '\n');
      } catch (err) {
        if (err instanceof TtlvError) throw new UsageError(`kmip decode: ${err.message}; check the message bytes`);
        throw err;
      }
      return 0;
    }
    if (sub === 'encode') {
      let json: unknown;
      try {
        json = JSON.parse(await input(arg, 'encode'));
      } catch (err) {
        if (err instanceof UsageError) throw err;
        throw new UsageError(`kmip encode: input is not valid JSON (${(err as Error).message}); pass the output of kmip decode`);
      }
      try {
        process.stdout.write(encode(fromJson(json)).toString('hex').toUpperCase() + '\n');
      } catch (err) {
        if (err instanceof TtlvJsonError) throw new UsageError(`kmip encode: ${err.message}; see the JSON that kmip decode prints`);
        throw err;
      }
      return 0;
    }
    throw new UsageError(`kmip: unknown subcommand "${sub ?? ''}"; usage: ${USAGE}`);
  },
};
