/**
 * The JSON form of a TTLV tree used by `hsm-harness kmip decode/encode` and by the fixtures:
 *   { "tag": "Request Message", "type": "Structure", "value": [ … ] }
 * Tags are names (unknown ones as "0x540001"); Enumerations are names where the dictionary knows the value
 * (numbers otherwise); Long Integer is a decimal string; Big Integer is signed hex ("0x…" / "-0x…");
 * Byte String is hex; Date-Time is ISO 8601 (UTC) when representable, else a decimal string of seconds.
 * toJson and fromJson are exact inverses for every tree the codec can encode.
 */
import type { Item, ItemType } from './ttlv.js';
import { DEFAULT_MAX_DEPTH, TYPE_CODES } from './ttlv.js';
import { ATTRIBUTE_ENUMS, ENUMS, T, enumName, enumValue, tagFromName, tagName } from './tags.js';

export interface JsonItem {
  tag: string;
  type: ItemType;
  value: unknown;
}

/** Thrown for JSON that does not describe a TTLV tree; `path` says where. */
export class TtlvJsonError extends Error {
  constructor(
    reason: string,
    readonly path: string[],
  ) {
    super(`${reason}${path.length ? ` at ${path.join(' / ')}` : ''}`);
    this.name = 'TtlvJsonError';
  }
}

const ATTRIBUTE_NAME = T('Attribute Name');
const ATTRIBUTE_VALUE = T('Attribute Value');
const MAX_DATE_SECONDS = 8_640_000_000_000n; // the range of a JS Date

/** Which enumeration table renders an item: its tag's, or for an Attribute Value the one its name selects. */
function enumTable(tag: number, attributeName: string | undefined): Record<number, string> | undefined {
  // Own properties only: a name from the input ("__proto__", "constructor") must not reach Object.prototype.
  if (tag === ATTRIBUTE_VALUE && attributeName) return Object.hasOwn(ATTRIBUTE_ENUMS, attributeName) ? ATTRIBUTE_ENUMS[attributeName] : undefined;
  return Object.hasOwn(ENUMS, tag) ? ENUMS[tag] : undefined;
}

function siblingAttributeName(children: Item[]): string | undefined {
  const n = children.find((c) => c.tag === ATTRIBUTE_NAME && c.type === 'TextString');
  return n ? (n.value as string) : undefined;
}

export function toJson(item: Item, attributeName?: string): JsonItem {
  const tag = tagName(item.tag);
  switch (item.type) {
    case 'Structure': {
      const name = siblingAttributeName(item.value);
      return { tag, type: item.type, value: item.value.map((c) => toJson(c, name)) };
    }
    case 'Enumeration':
      return { tag, type: item.type, value: enumName(enumTable(item.tag, attributeName), item.value) ?? item.value };
    case 'LongInteger':
      return { tag, type: item.type, value: item.value.toString() };
    case 'BigInteger':
      return { tag, type: item.type, value: item.value < 0n ? `-0x${(-item.value).toString(16)}` : `0x${item.value.toString(16)}` };
    case 'ByteString':
      return { tag, type: item.type, value: Buffer.from(item.value).toString('hex') };
    case 'DateTime': {
      const s = item.value;
      const iso = s >= -MAX_DATE_SECONDS && s <= MAX_DATE_SECONDS ? new Date(Number(s) * 1000).toISOString().replace('.000Z', 'Z') : undefined;
      // ISO strings only when they parse back to the same second (years beyond 9999 do not).
      return { tag, type: item.type, value: iso && /^\d{4}-/.test(iso) ? iso : s.toString() };
    }
    default:
      return { tag, type: item.type, value: item.value };
  }
}

/**
 * Check the bracket nesting of JSON text before parsing it, in one linear pass: a structure nested deeper
 * than the TTLV decoder accepts is refused with the character offset where it goes too deep. Each TTLV
 * Structure adds two levels ({ and [).
 */
export function checkJsonNesting(text: string, maxDepth = DEFAULT_MAX_DEPTH): void {
  const limit = 2 * maxDepth + 1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) throw new TtlvJsonError(`nested deeper than ${maxDepth} TTLV structures at character ${i}`, []);
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
}

export function fromJson(json: unknown, path: string[] = [], attributeName?: string): Item {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TtlvJsonError('expected an object {tag, type, value}', path);
  if (path.length > DEFAULT_MAX_DEPTH) throw new TtlvJsonError(`nesting deeper than ${DEFAULT_MAX_DEPTH}`, path.slice(0, 3).concat('…'));
  const j = json as Record<string, unknown>;
  if (typeof j.tag !== 'string') throw new TtlvJsonError('"tag" must be a string (a tag name or 0xXXXXXX)', path);
  const here = [...path, j.tag];
  const tag = tagFromName(j.tag);
  if (tag === undefined) throw new TtlvJsonError(`unknown tag "${j.tag}" (use a KMIP 1.2 tag name or 0xXXXXXX)`, path);
  if (typeof j.type !== 'string' || !Object.hasOwn(TYPE_CODES, j.type)) {
    throw new TtlvJsonError(`"type" must be one of ${Object.keys(TYPE_CODES).join(', ')}`, here);
  }
  const type = j.type as ItemType;
  const v = j.value;
  const bad = (what: string): never => {
    throw new TtlvJsonError(`${type} value must be ${what}`, here);
  };
  switch (type) {
    case 'Structure': {
      if (!Array.isArray(v)) return bad('an array of items');
      const name = v.find((c) => c && c.tag === 'Attribute Name' && c.type === 'TextString')?.value;
      return { tag, type, value: v.map((c) => fromJson(c, here, typeof name === 'string' ? name : undefined)) };
    }
    case 'Integer':
      if (!Number.isInteger(v) || (v as number) < -(2 ** 31) || (v as number) >= 2 ** 31) return bad('a 32-bit signed integer');
      return { tag, type, value: v as number };
    case 'Interval':
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= 2 ** 32) return bad('a 32-bit unsigned integer');
      return { tag, type, value: v as number };
    case 'Enumeration': {
      if (typeof v === 'string') {
        const n = enumValue(enumTable(tag, attributeName), v);
        if (n === undefined) return bad(`a known name for ${tagName(tag)} or a number (got "${v}")`);
        return { tag, type, value: n };
      }
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= 2 ** 32) return bad('a name or a 32-bit unsigned integer');
      return { tag, type, value: v as number };
    }
    case 'LongInteger': {
      const n = parseBig(v, /^-?\d+$/);
      if (n === undefined || n < -(2n ** 63n) || n >= 2n ** 63n) return bad('a decimal string of a 64-bit signed integer');
      return { tag, type, value: n };
    }
    case 'BigInteger': {
      if (typeof v !== 'string' || !/^-?0x[0-9a-fA-F]+$/.test(v)) return bad('signed hex like "0x1f" or "-0x1f"');
      const neg = v.startsWith('-');
      const mag = BigInt(v.slice(neg ? 1 : 0));
      return { tag, type, value: neg ? -mag : mag };
    }
    case 'Boolean':
      if (typeof v !== 'boolean') return bad('true or false');
      return { tag, type, value: v };
    case 'TextString':
      if (typeof v !== 'string') return bad('a string');
      return { tag, type, value: v };
    case 'ByteString':
      // A plain character class: a grouped repetition overflows the regex engine's stack on megabytes of hex.
      if (typeof v !== 'string' || v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) return bad('an even-length hex string');
      return { tag, type, value: Buffer.from(v, 'hex') };
    case 'DateTime': {
      if (typeof v === 'string' && /^-?\d+$/.test(v)) {
        const n = BigInt(v);
        if (n < -(2n ** 63n) || n >= 2n ** 63n) return bad('within 64 bits');
        return { tag, type, value: n };
      }
      const ms = typeof v === 'string' ? Date.parse(v) : NaN;
      if (Number.isNaN(ms) || ms % 1000 !== 0) return bad('an ISO 8601 time in whole seconds ("2008-03-14T11:56:40Z") or decimal seconds');
      return { tag, type, value: BigInt(ms / 1000) };
    }
  }
}

function parseBig(v: unknown, re: RegExp): bigint | undefined {
  if (typeof v === 'string' && re.test(v)) return BigInt(v);
  return undefined;
}
