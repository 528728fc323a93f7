/**
 * TTLV codec against the KMIP specification's encoding examples and published KMIP test-case messages
 * (fixtures/kmip/*.json, with sources), plus property-based round trips and a decode fuzz test.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode, TtlvError, bigToBytes, bigFromBytes } from '../../src/kmip/ttlv.js';
import type { Item } from '../../src/kmip/ttlv.js';
import { fromJson, toJson } from '../../src/kmip/json.js';
import { child, children, parseResponse, textOf, numberOf } from '../../src/kmip/messages.js';
import { ENUMS, T, tagHex, tagName, operationName } from '../../src/kmip/tags.js';

const FIX = join(import.meta.dirname, '..', '..', 'fixtures', 'kmip');
const primitives = JSON.parse(readFileSync(join(FIX, 'spec-primitives.json'), 'utf8'));
const cases = JSON.parse(readFileSync(join(FIX, 'test-cases.json'), 'utf8'));
const hex = (h: string) => Buffer.from(h, 'hex');

describe('KMIP spec §9.1.2 primitive examples', () => {
  for (const v of primitives.vectors) {
    test(v.name, () => {
      const item = decode(hex(v.hex));
      expect(item.tag).toBe(0x420020);
      expect(item.type).toBe(v.type);
      if (v.type === 'BigInteger') expect(item.value).toBe(BigInt(v.decimal));
      else if (v.type === 'Structure') expect((item.value as Item[]).map((c) => ({ ...toJson(c), tag: tagHex(c.tag) }))).toEqual(v.children);
      else expect(toJson(item).value).toEqual(v.value);
      expect(encode(item).toString('hex').toUpperCase()).toBe(v.hex);
      expect(
        encode(fromJson(toJson(item)))
          .toString('hex')
          .toUpperCase(),
      ).toBe(v.hex);
    });
  }
});

const version = (pv: Item | undefined) => `${numberOf(pv, 'Protocol Version Major')}.${numberOf(pv, 'Protocol Version Minor')}`;

describe('published KMIP test-case messages', () => {
  for (const v of cases.vectors) {
    test(v.name, () => {
      const bytes = hex(v.hex);
      const msg = decode(bytes);
      const f = v.facts;
      expect(tagName(msg.tag)).toBe(f.message);
      expect(encode(msg).equals(bytes)).toBe(true);
      const header = child(msg, f.message === 'Request Message' ? 'Request Header' : 'Response Header');
      expect(version(child(header, 'Protocol Version'))).toBe(f.version);
      expect(numberOf(header, 'Batch Count')).toBe(f.batchCount);
      const items = children(msg, 'Batch Item');
      expect(
        items.map((b) => {
          const o = numberOf(b, 'Operation');
          return o === undefined ? null : operationName(o);
        }),
      ).toEqual(f.operations);
      if (f.timeStamp) expect(child(header, 'Time Stamp')?.value).toBe(BigInt(f.timeStamp));
      if (f.maximumResponseSize) expect(numberOf(header, 'Maximum Response Size')).toBe(f.maximumResponseSize);
      if (f.username) {
        const cv = child(child(child(header, 'Authentication'), 'Credential'), 'Credential Value');
        expect(textOf(cv, 'Username')).toBe(f.username);
        expect(textOf(cv, 'Password')).toBe(f.password);
      }
      const payloads = items.map((b) => child(b, 'Request Payload') ?? child(b, 'Response Payload'));
      if (f.resultStatus) {
        const r = parseResponse(msg);
        expect(r.items.map((i) => ENUMS[T('Result Status')]![i.resultStatus])).toEqual(f.resultStatus);
        if (f.resultReason) expect(r.items.map((i) => ENUMS[T('Result Reason')]![i.resultReason!])).toEqual(f.resultReason);
        if (f.resultMessage) expect(r.items.map((i) => i.resultMessage)).toEqual(f.resultMessage);
      }
      if (f.uniqueIdentifiers) expect(children(payloads[0], 'Unique Identifier').map((u) => u.value)).toEqual(f.uniqueIdentifiers);
      if (f.payloadVersions) expect(children(payloads[0], 'Protocol Version').map(version)).toEqual(f.payloadVersions);
      if (f.names) {
        const names = JSON.stringify(toJson(msg));
        for (const n of f.names) expect(names).toContain(`"${n}"`);
      }
      if (f.queryOperationCount) expect(children(payloads[0], 'Operation')).toHaveLength(f.queryOperationCount);
      if (f.queryObjectTypes) expect(children(payloads[0], 'Object Type').map((o) => ENUMS[T('Object Type')]![o.value as number])).toEqual(f.queryObjectTypes);
      if (f.dataLength) expect(numberOf(payloads[0], 'Data Length')).toBe(f.dataLength);
      if (f.data) expect(Buffer.from(child(payloads[0], 'Data')!.value as Uint8Array).toString('hex')).toBe(f.data);
      if (f.attributes) {
        const json = toJson(payloads[0]!).value as { tag: string; value: { tag: string; value: unknown }[] }[];
        const attr = json.find((a) => a.tag === 'Attribute')!;
        expect(attr.value.map((x) => x.value)).toEqual(Object.entries(f.attributes).flat());
      }
      // The JSON form is an exact inverse.
      expect(encode(fromJson(JSON.parse(JSON.stringify(toJson(msg))))).equals(bytes)).toBe(true);
    });
  }

  test('an error item without Operation is reported as a deviation when the request had one', () => {
    const resp = decode(hex(cases.vectors.find((v: { name: string }) => v.name === 'query-response-too-large').hex));
    const r = parseResponse(resp, { items: [{ operation: 0x18, payload: [] }] });
    expect(r.deviations.join(' ')).toMatch(/error Batch Item for Query carries no Operation/);
  });
});

describe('strict decoding errors carry offset and tag path', () => {
  const dv = hex(cases.vectors[0].hex); // Discover Versions request, 104 bytes

  const err = (b: Uint8Array, opts?: Parameters<typeof decode>[1]) => {
    try {
      decode(b, opts);
    } catch (e) {
      expect(e).toBeInstanceOf(TtlvError);
      return e as TtlvError;
    }
    throw new Error('decoded without error');
  };

  test('truncation', () => {
    const e = err(dv.subarray(0, 60));
    expect(e.offset).toBe(4);
    expect(e.path).toEqual(['Request Message']);
    expect(e.message).toMatch(/overruns/);
  });
  test('trailing bytes', () => {
    const e = err(Buffer.concat([dv, Buffer.alloc(8)]));
    expect(e.offset).toBe(dv.length);
    expect(e.message).toMatch(/8 trailing bytes/);
  });
  test('type/length mismatch: Integer of length 8', () => {
    const b = Buffer.from(dv);
    b.writeUInt32BE(8, 28); // Protocol Version Major's length (item at 24)
    const e = err(b);
    expect(e.offset).toBe(28);
    expect(e.path).toEqual(['Request Message', 'Request Header', 'Protocol Version', 'Protocol Version Major']);
  });
  test('non-zero padding, and lenient mode that records it', () => {
    const b = Buffer.from(dv);
    b[39] = 0x01; // padding of Protocol Version Major's value (value at 32..35, padding 36..39)
    const e = err(b);
    expect(e.offset).toBe(39);
    expect(e.message).toMatch(/non-zero padding/);
    const warnings: string[] = [];
    decode(b, { lenientPadding: warnings });
    expect(warnings).toHaveLength(1);
  });
  test('unknown type byte', () => {
    const b = Buffer.from(dv);
    b[3] = 0x0b; // Date-Time Extended is KMIP 2.0 only
    expect(err(b).offset).toBe(3);
  });
  test('Boolean other than 0 or 1', () => {
    expect(err(hex('42002006000000080000000000000002')).message).toMatch(/Boolean/);
  });
  test('Structure length not a multiple of 8', () => {
    expect(err(hex('4200200100000004000000000000000')).message).toMatch(/truncated|multiple of 8/);
    expect(err(hex('420020010000000C42000402000000040000000100000000')).message).toMatch(/multiple of 8/);
  });
  test('nesting past the depth limit', () => {
    let item: Item = { tag: 0x420020, type: 'Integer', value: 1 };
    for (let i = 0; i < 40; i++) item = { tag: 0x420020, type: 'Structure', value: [item] };
    const e = err(encode(item));
    expect(e.message).toMatch(/nesting deeper than 32/);
    expect(e.path).toHaveLength(33);
    expect(() => decode(encode(item), { maxDepth: 64 })).not.toThrow();
  });
  test('unknown tags render as hex', () => {
    const item = decode(hex('54000107000000024869000000000000'));
    expect(toJson(item)).toEqual({ tag: '0x540001', type: 'TextString', value: 'Hi' });
  });
});

// ---- property-based round trips ----

const tagArb = fc.oneof(fc.constantFrom(...[0x420008, 0x42005c, 0x420094, 0x42000b, 0x420020]), fc.integer({ min: 0x540000, max: 0x54ffff }));
const leaf: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ tag: tagArb, type: fc.constant('Integer' as const), value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
  fc.record({ tag: tagArb, type: fc.constant('LongInteger' as const), value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ tag: tagArb, type: fc.constant('BigInteger' as const), value: fc.bigInt({ min: -(2n ** 600n), max: 2n ** 600n }) }),
  fc.record({ tag: tagArb, type: fc.constant('Enumeration' as const), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
  fc.record({ tag: tagArb, type: fc.constant('Boolean' as const), value: fc.boolean() }),
  fc.record({ tag: tagArb, type: fc.constant('TextString' as const), value: fc.string({ unit: 'grapheme', maxLength: 40 }) }),
  fc.record({ tag: tagArb, type: fc.constant('ByteString' as const), value: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ tag: tagArb, type: fc.constant('DateTime' as const), value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
  fc.record({ tag: tagArb, type: fc.constant('Interval' as const), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
);
const tree: fc.Arbitrary<Item> = fc.letrec<{ item: Item }>((tie) => ({
  item: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({ tag: tagArb, type: fc.constant('Structure' as const), value: fc.array(tie('item'), { maxLength: 5 }) }),
  ),
})).item;

const normal = (i: Item): unknown =>
  i.type === 'Structure' ? { ...i, value: i.value.map(normal) } : i.type === 'ByteString' ? { ...i, value: Buffer.from(i.value).toString('hex') } : i;

describe('properties', () => {
  test('decode(encode(x)) == x, length is a multiple of 8, and the JSON form round-trips', () => {
    fc.assert(
      fc.property(tree, (item) => {
        const b = encode(item);
        expect(b.length % 8).toBe(0);
        expect(normal(decode(b))).toEqual(normal(item));
        expect(encode(fromJson(JSON.parse(JSON.stringify(toJson(item))))).equals(b)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  test("Big Integer bytes are minimal two's complement, a multiple of 8", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 2100n), max: 2n ** 2100n }), (v) => {
        const b = bigToBytes(v);
        expect(b.length % 8).toBe(0);
        expect(bigFromBytes(b)).toBe(v);
        if (b.length > 8) expect(bigFromBytes(b.subarray(8))).not.toBe(v);
      }),
    );
  });

  test('fuzz: decoding arbitrary or mutated bytes only ever throws TtlvError', () => {
    const seeds = cases.vectors.map((v: { hex: string }) => hex(v.hex));
    const mutated = fc
      .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat())
      .map(([seed, edits, cut]) => {
        const b = Buffer.from(seed);
        for (const [pos, val] of edits) b[pos % b.length] = val;
        return cut % 5 === 0 ? b.subarray(0, cut % b.length) : b;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated), (b) => {
        try {
          const item = decode(b);
          // Anything that decodes must re-encode to the same bytes or differ only in non-canonical Big Integer padding.
          if (!JSON.stringify(toJson(item)).includes('BigInteger')) expect(encode(item).equals(Buffer.from(b))).toBe(true);
        } catch (e) {
          if (!(e instanceof TtlvError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
