/**
 * `hsm-harness kmip decode <hex|->` prints a TTLV message as JSON (src/kmip/json.ts);
 * `hsm-harness kmip encode <json|->` is its exact inverse and prints hex. "-" reads standard input.
 */
import type { Command } from './types.js';
import { UsageError } from '../errors.js';
import { decode, DEFAULT_MAX_MESSAGE_BYTES, encode, TtlvError } from '../kmip/ttlv.js';
import { checkJsonNesting, fromJson, toJson, TtlvJsonError } from '../kmip/json.js';

const USAGE = 'hsm-harness kmip decode <hex|->  |  hsm-harness kmip encode <json|->';

/**
 * Input limits: a TTLV message of at most DEFAULT_MAX_MESSAGE_BYTES (1 MiB), so hex of twice that plus
 * whitespace, and JSON of at most 16 times that. Larger input is refused before any work is done.
 */
const MAX_INPUT_CHARS = 16 * DEFAULT_MAX_MESSAGE_BYTES;

/** Hex digits (whitespace and a leading 0x allowed) → bytes, in one pass; errors name the offset. */
function hexToBytes(text: string): Buffer {
  let start = 0;
  while (start < text.length && /\s/.test(text[start]!)) start++;
  if (/^0x/i.test(text.slice(start, start + 2))) start += 2;
  const digits = Buffer.alloc(Math.ceil((text.length - start) / 2) + 1);
  let n = 0;
  let high = -1;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (v === -1) {
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
      throw new UsageError(
        `kmip decode: input is not hex: character ${JSON.stringify(text[i])} at offset ${i}; pass the TTLV bytes as hex (whitespace allowed)`,
      );
    }
    if (high === -1) high = v;
    else {
      digits[n++] = (high << 4) | v;
      high = -1;
    }
    if (n > DEFAULT_MAX_MESSAGE_BYTES) {
      throw new UsageError(
        `kmip decode: message is larger than the limit of ${DEFAULT_MAX_MESSAGE_BYTES} bytes (byte ${DEFAULT_MAX_MESSAGE_BYTES} reached at input offset ${i})`,
      );
    }
  }
  if (high !== -1) throw new UsageError('kmip decode: input has an odd number of hex digits; pass the TTLV bytes as hex (whitespace allowed)');
  if (n === 0) throw new UsageError('kmip decode: input is empty; pass the TTLV bytes as hex');
  return digits.subarray(0, n);
}

async function input(arg: string | undefined, what: string): Promise<string> {
  if (arg === undefined) throw new UsageError(`kmip ${what}: give the input as an argument or "-" for standard input; usage: ${USAGE}`);
  if (arg !== '-') {
    if (arg.length > MAX_INPUT_CHARS)
      throw new UsageError(`kmip ${what}: input is larger than ${MAX_INPUT_CHARS} characters (a TTLV message is at most ${DEFAULT_MAX_MESSAGE_BYTES} bytes)`);
    return arg;
  }
  // Streamed rather than readFileSync(0), which fails with EAGAIN on non-blocking pipes.
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_INPUT_CHARS)
      throw new UsageError(`kmip ${what}: input is larger than ${MAX_INPUT_CHARS} bytes (a TTLV message is at most ${DEFAULT_MAX_MESSAGE_BYTES} bytes)`);
    chunks.push(c as Buffer);
  }
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
      const bytes = hexToBytes(await input(arg, 'decode'));
      try {
        process.stdout.write(`${JSON.stringify(toJson(decode(bytes)), null, 2)}\n`);
      } catch (err) {
        if (err instanceof TtlvError) throw new UsageError(`kmip decode: ${err.message}; check the message bytes`);
        throw err;
      }
      return 0;
    }
    if (sub === 'encode') {
      let json: unknown;
      try {
        const text = await input(arg, 'encode');
        checkJsonNesting(text);
        json = JSON.parse(text);
      } catch (err) {
        if (err instanceof TtlvJsonError) throw new UsageError(`kmip encode: ${err.message}; a KMIP message nests at most 32 structures`);
        if (err instanceof UsageError) throw err;
        throw new UsageError(`kmip encode: input is not valid JSON (${(err as Error).message}); pass the output of kmip decode`);
      }
      try {
        process.stdout.write(`${encode(fromJson(json)).toString('hex').toUpperCase()}\n`);
      } catch (err) {
        if (err instanceof TtlvJsonError) throw new UsageError(`kmip encode: ${err.message}; see the JSON that kmip decode prints`);
        if (err instanceof TtlvError) throw new UsageError(`kmip encode: ${err.message}; a KMIP message is at most ${DEFAULT_MAX_MESSAGE_BYTES} bytes`);
        throw err;
      }
      return 0;
    }
    throw new UsageError(`kmip: unknown subcommand "${sub ?? ''}"; usage: ${USAGE}`);
  },
};
