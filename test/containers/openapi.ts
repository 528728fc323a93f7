/**
 * Checks a JSON value against one of the OpenAPI schemas in fixtures/nethsm/openapi-schemas.json: the
 * subset of JSON Schema the NetHSM spec uses ($ref, type, properties, required, enum, pattern, lengths,
 * bounds, items). Additional properties are errors, as on the NetHSM ("expect exactly the specified JSON").
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Schema {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: string[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  format?: string;
}

export const NETHSM_SCHEMAS = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'nethsm', 'openapi-schemas.json'), 'utf8'))
  .schemas as Record<string, Schema>;

/** Problems found, empty when the value conforms. */
export function validate(schemaName: string, value: unknown): string[] {
  const root = NETHSM_SCHEMAS[schemaName];
  if (!root) return [`unknown schema ${schemaName}`];
  const problems: string[] = [];
  check(root, value, schemaName, problems);
  return problems;
}

function check(s: Schema, v: unknown, at: string, out: string[]): void {
  if (s.$ref) {
    const name = s.$ref.replace('#/components/schemas/', '');
    const target = NETHSM_SCHEMAS[name];
    if (!target) {
      out.push(`${at}: unresolved ${s.$ref}`);
      return;
    }
    check(target, v, at, out);
    return;
  }
  switch (s.type) {
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        out.push(`${at}: not an object`);
        return;
      }
      const o = v as Record<string, unknown>;
      for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}.${r}: required`);
      for (const [k, x] of Object.entries(o)) {
        const p = s.properties?.[k];
        if (!p) out.push(`${at}.${k}: not in the schema (the NetHSM answers 400)`);
        else check(p, x, `${at}.${k}`, out);
      }
      return;
    }
    case 'array':
      if (!Array.isArray(v)) {
        out.push(`${at}: not an array`);
        return;
      }
      for (const [i, x] of v.entries()) if (s.items) check(s.items, x, `${at}[${i}]`, out);
      return;
    case 'integer':
      if (!Number.isInteger(v)) {
        out.push(`${at}: not an integer`);
        return;
      }
      if (s.minimum !== undefined && (v as number) < s.minimum) out.push(`${at}: below ${s.minimum}`);
      if (s.maximum !== undefined && (v as number) > s.maximum) out.push(`${at}: above ${s.maximum}`);
      return;
    case 'string': {
      if (typeof v !== 'string') {
        out.push(`${at}: not a string`);
        return;
      }
      if (s.enum && !s.enum.includes(v)) out.push(`${at}: "${v}" is not one of ${s.enum.join(', ')}`);
      if (s.minLength !== undefined && v.length < s.minLength) out.push(`${at}: shorter than ${s.minLength}`);
      if (s.maxLength !== undefined && v.length > s.maxLength) out.push(`${at}: longer than ${s.maxLength}`);
      if (s.pattern && !new RegExp(s.pattern).test(v)) out.push(`${at}: does not match ${s.pattern}`);
      // RFC 3339 UTC as the NetHSM wants it (provision, restore).
      if (s.format === 'date-time' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) out.push(`${at}: not an RFC 3339 UTC time`);
      return;
    }
    default:
      out.push(`${at}: schema without a type`);
  }
}
