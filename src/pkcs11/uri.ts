/**
 * RFC 7512 PKCS#11 URIs, as far as a harness needs them to pick a module, a token and a PIN:
 * path attributes token, manufacturer, model, serial, slot-id, slot-description, library-*, object, id, type;
 * query attributes module-path, module-name, pin-source, pin-value. Percent-encoding is decoded.
 */
import { UsageError } from '../errors.js';
import { registerSecret } from '../secrets.js';

export interface Pkcs11Uri {
  token?: string;
  manufacturer?: string;
  model?: string;
  serial?: string;
  slotId?: number;
  slotDescription?: string;
  object?: string;
  id?: Buffer;
  type?: string;
  modulePath?: string;
  moduleName?: string;
  pinSource?: string;
  pinValue?: string;
  /** Vendor-specific and library-* attributes: accepted as RFC 7512 allows, not used for matching. */
  other: Record<string, string>;
}

const PATH_ATTRS = new Set([
  'token',
  'manufacturer',
  'model',
  'serial',
  'slot-id',
  'slot-description',
  'slot-manufacturer',
  'library-manufacturer',
  'library-description',
  'library-version',
  'object',
  'id',
  'type',
]);
const QUERY_ATTRS = new Set(['module-path', 'module-name', 'pin-source', 'pin-value']);
/** RFC 7512 pk11-v-attr-nm-char: vendor-specific attributes are allowed; this harness ignores them. */
const VENDOR_NAME = /^[a-z0-9_-]+$/i;

/** Percent-decode to bytes (RFC 3986 §2.1); a stray '%' is malformed. */
function decodeBytes(value: string, attr: string, uri: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw bad(uri, `bad percent-encoding in "${attr}"`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(out);
}

/** Whether an attribute name (or a segment without "=") may carry a PIN: anything naming "pin" but pin-source. */
function pinLike(name: string): boolean {
  let n = name;
  try {
    n = decodeURIComponent(name);
  } catch {
    /* keep it as written */
  }
  n = n.toLowerCase();
  return n.includes('pin') && n !== 'pin-source';
}

/**
 * The URI as it may be shown in an error: everything up to the first PIN-like attribute (in any letter case
 * or percent-encoding), then "name=***…" and nothing more: a pin-value may itself hold ";" or "&".
 */
export function showableUri(uri: string): string {
  let out = '';
  let i = 0;
  while (i < uri.length) {
    const sep = /[;?&]/g;
    sep.lastIndex = i;
    const m = sep.exec(uri);
    const end = m ? m.index : uri.length;
    const segment = uri.slice(i, end);
    const eq = segment.indexOf('=');
    const name = eq === -1 ? segment : segment.slice(0, eq);
    if (pinLike(name.replace(/^pkcs11:/i, ''))) {
      // Nothing after a PIN attribute is shown: in a malformed URI, a raw "&" or ";" inside the PIN is
      // indistinguishable from the start of the next attribute, so any "rest" may be the PIN's second half.
      out += `${eq === -1 ? '' : `${name}=`}***${end < uri.length || eq !== -1 ? '…' : ''}`;
      break;
    }
    out += segment + (m ? m[0] : '');
    i = end + (m ? 1 : 0);
  }
  return out;
}

function bad(uri: string, what: string): UsageError {
  return new UsageError(
    `malformed PKCS#11 URI ${JSON.stringify(showableUri(uri))}: ${what}; see RFC 7512, e.g. pkcs11:token=MyToken?module-path=/usr/lib/softhsm/libsofthsm2.so`,
  );
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!uri.startsWith('pkcs11:')) throw bad(uri, 'it must start with "pkcs11:"');
  const body = uri.slice('pkcs11:'.length);
  const q = body.indexOf('?');
  const pathPart = q === -1 ? body : body.slice(0, q);
  const queryPart = q === -1 ? '' : body.slice(q + 1);
  const out: Pkcs11Uri = { other: {} };
  const seen = new Set<string>();

  const assign = (attr: string, raw: string, inQuery: boolean) => {
    if (seen.has(attr) && !inQuery) throw bad(uri, `attribute "${attr}" appears twice`);
    seen.add(attr);
    const bytes = decodeBytes(raw, attr, uri);
    if (attr === 'id') {
      out.id = bytes;
      return;
    }
    const v = bytes.toString('utf8');
    switch (attr) {
      case 'token':
        out.token = v;
        break;
      case 'manufacturer':
        out.manufacturer = v;
        break;
      case 'model':
        out.model = v;
        break;
      case 'serial':
        out.serial = v;
        break;
      case 'slot-id': {
        if (!/^\d+$/.test(v)) throw bad(uri, `slot-id must be a decimal number, got "${v}"`);
        out.slotId = Number(v);
        break;
      }
      case 'slot-description':
        out.slotDescription = v;
        break;
      case 'object':
        out.object = v;
        break;
      case 'type':
        if (!['public', 'private', 'cert', 'secret-key', 'data'].includes(v)) throw bad(uri, `unknown type "${v}"`);
        out.type = v;
        break;
      case 'module-path':
        out.modulePath = v;
        break;
      case 'module-name':
        out.moduleName = v;
        break;
      case 'pin-source':
        out.pinSource = v;
        break;
      case 'pin-value':
        registerSecret(v, 'pin-value in the PKCS#11 URI');
        out.pinValue = v;
        break;
      default:
        out.other[attr] = v;
    }
  };

  if (pathPart.length > 0) {
    for (const part of pathPart.split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw bad(uri, `path attribute "${pinLike(part) ? '***' : part}" has no "name=value" form`);
      const attr = part.slice(0, eq).toLowerCase();
      if (!PATH_ATTRS.has(attr) && !VENDOR_NAME.test(attr)) throw bad(uri, `invalid attribute name "${attr}"`);
      assign(attr, part.slice(eq + 1), false);
    }
  }
  if (queryPart.length > 0) {
    for (const part of queryPart.split('&')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw bad(uri, `query attribute "${pinLike(part) ? '***' : part}" has no "name=value" form`);
      const attr = part.slice(0, eq).toLowerCase();
      if (!QUERY_ATTRS.has(attr) && !VENDOR_NAME.test(attr)) throw bad(uri, `invalid attribute name "${attr}"`);
      assign(attr, part.slice(eq + 1), true);
    }
  }
  if (out.pinSource && out.pinValue) throw bad(uri, 'pin-source and pin-value are mutually exclusive');
  return out;
}
