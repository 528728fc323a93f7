/**
 * KMIP 1.2 tag dictionary (spec §9.1.3.1) and the enumerations the suites use (§9.1.3.2), so that every
 * decoded item renders by name. Tags not listed render as hex (0x42xxxx / 0x54xxxx) rather than failing.
 */

/** Tag → name, KMIP 1.2 (420001–4200BF; 1.2 additions through 4200C4 that the suites touch). */
const TAG_LIST: [number, string][] = [
  [0x420001, 'Activation Date'], [0x420002, 'Application Data'], [0x420003, 'Application Namespace'],
  [0x420004, 'Application Specific Information'], [0x420005, 'Archive Date'], [0x420006, 'Asynchronous Correlation Value'],
  [0x420007, 'Asynchronous Indicator'], [0x420008, 'Attribute'], [0x420009, 'Attribute Index'], [0x42000A, 'Attribute Name'],
  [0x42000B, 'Attribute Value'], [0x42000C, 'Authentication'], [0x42000D, 'Batch Count'],
  [0x42000E, 'Batch Error Continuation Option'], [0x42000F, 'Batch Item'], [0x420010, 'Batch Order Option'],
  [0x420011, 'Block Cipher Mode'], [0x420012, 'Cancellation Result'], [0x420013, 'Certificate'],
  [0x420014, 'Certificate Identifier'], [0x420015, 'Certificate Issuer'], [0x420016, 'Certificate Issuer Alternative Name'],
  [0x420017, 'Certificate Issuer Distinguished Name'], [0x420018, 'Certificate Request'], [0x420019, 'Certificate Request Type'],
  [0x42001A, 'Certificate Subject'], [0x42001B, 'Certificate Subject Alternative Name'],
  [0x42001C, 'Certificate Subject Distinguished Name'], [0x42001D, 'Certificate Type'], [0x42001E, 'Certificate Value'],
  [0x42001F, 'Common Template-Attribute'], [0x420020, 'Compromise Date'], [0x420021, 'Compromise Occurrence Date'],
  [0x420022, 'Contact Information'], [0x420023, 'Credential'], [0x420024, 'Credential Type'], [0x420025, 'Credential Value'],
  [0x420026, 'Criticality Indicator'], [0x420027, 'CRT Coefficient'], [0x420028, 'Cryptographic Algorithm'],
  [0x420029, 'Cryptographic Domain Parameters'], [0x42002A, 'Cryptographic Length'], [0x42002B, 'Cryptographic Parameters'],
  [0x42002C, 'Cryptographic Usage Mask'], [0x42002D, 'Custom Attribute'], [0x42002E, 'D'], [0x42002F, 'Deactivation Date'],
  [0x420030, 'Derivation Data'], [0x420031, 'Derivation Method'], [0x420032, 'Derivation Parameters'], [0x420033, 'Destroy Date'],
  [0x420034, 'Digest'], [0x420035, 'Digest Value'], [0x420036, 'Encryption Key Information'], [0x420037, 'G'],
  [0x420038, 'Hashing Algorithm'], [0x420039, 'Initial Date'], [0x42003A, 'Initialization Vector'], [0x42003B, 'Issuer'],
  [0x42003C, 'Iteration Count'], [0x42003D, 'IV/Counter/Nonce'], [0x42003E, 'J'], [0x42003F, 'Key'],
  [0x420040, 'Key Block'], [0x420041, 'Key Compression Type'], [0x420042, 'Key Format Type'], [0x420043, 'Key Material'],
  [0x420044, 'Key Part Identifier'], [0x420045, 'Key Value'], [0x420046, 'Key Wrapping Data'],
  [0x420047, 'Key Wrapping Specification'], [0x420048, 'Last Change Date'], [0x420049, 'Lease Time'], [0x42004A, 'Link'],
  [0x42004B, 'Link Type'], [0x42004C, 'Linked Object Identifier'], [0x42004D, 'MAC/Signature'],
  [0x42004E, 'MAC/Signature Key Information'], [0x42004F, 'Maximum Items'], [0x420050, 'Maximum Response Size'],
  [0x420051, 'Message Extension'], [0x420052, 'Modulus'], [0x420053, 'Name'], [0x420054, 'Name Type'], [0x420055, 'Name Value'],
  [0x420056, 'Object Group'], [0x420057, 'Object Type'], [0x420058, 'Offset'], [0x420059, 'Opaque Data Type'],
  [0x42005A, 'Opaque Data Value'], [0x42005B, 'Opaque Object'], [0x42005C, 'Operation'], [0x42005D, 'Operation Policy Name'],
  [0x42005E, 'P'], [0x42005F, 'Padding Method'], [0x420060, 'Prime Exponent P'], [0x420061, 'Prime Exponent Q'],
  [0x420062, 'Prime Field Size'], [0x420063, 'Private Exponent'], [0x420064, 'Private Key'],
  [0x420065, 'Private Key Template-Attribute'], [0x420066, 'Private Key Unique Identifier'], [0x420067, 'Process Start Date'],
  [0x420068, 'Protect Stop Date'], [0x420069, 'Protocol Version'], [0x42006A, 'Protocol Version Major'],
  [0x42006B, 'Protocol Version Minor'], [0x42006C, 'Public Exponent'], [0x42006D, 'Public Key'],
  [0x42006E, 'Public Key Template-Attribute'], [0x42006F, 'Public Key Unique Identifier'], [0x420070, 'Put Function'],
  [0x420071, 'Q'], [0x420072, 'Q String'], [0x420073, 'Qlength'], [0x420074, 'Query Function'],
  [0x420075, 'Recommended Curve'], [0x420076, 'Replaced Unique Identifier'], [0x420077, 'Request Header'],
  [0x420078, 'Request Message'], [0x420079, 'Request Payload'], [0x42007A, 'Response Header'],
  [0x42007B, 'Response Message'], [0x42007C, 'Response Payload'], [0x42007D, 'Result Message'], [0x42007E, 'Result Reason'],
  [0x42007F, 'Result Status'], [0x420080, 'Revocation Message'], [0x420081, 'Revocation Reason'],
  [0x420082, 'Revocation Reason Code'], [0x420083, 'Key Role Type'], [0x420084, 'Salt'], [0x420085, 'Secret Data'],
  [0x420086, 'Secret Data Type'], [0x420087, 'Serial Number'], [0x420088, 'Server Information'], [0x420089, 'Split Key'],
  [0x42008A, 'Split Key Method'], [0x42008B, 'Split Key Parts'], [0x42008C, 'Split Key Threshold'], [0x42008D, 'State'],
  [0x42008E, 'Storage Status Mask'], [0x42008F, 'Symmetric Key'], [0x420090, 'Template'], [0x420091, 'Template-Attribute'],
  [0x420092, 'Time Stamp'], [0x420093, 'Unique Batch Item ID'], [0x420094, 'Unique Identifier'], [0x420095, 'Usage Limits'],
  [0x420096, 'Usage Limits Count'], [0x420097, 'Usage Limits Total'], [0x420098, 'Usage Limits Unit'], [0x420099, 'Username'],
  [0x42009A, 'Validity Date'], [0x42009B, 'Validity Indicator'], [0x42009C, 'Vendor Extension'],
  [0x42009D, 'Vendor Identification'], [0x42009E, 'Wrapping Method'], [0x42009F, 'X'], [0x4200A0, 'Y'], [0x4200A1, 'Password'],
  [0x4200A2, 'Device Identifier'], [0x4200A3, 'Encoding Option'], [0x4200A4, 'Extension Information'],
  [0x4200A5, 'Extension Name'], [0x4200A6, 'Extension Tag'], [0x4200A7, 'Extension Type'], [0x4200A8, 'Fresh'],
  [0x4200A9, 'Machine Identifier'], [0x4200AA, 'Media Identifier'], [0x4200AB, 'Network Identifier'],
  [0x4200AC, 'Object Group Member'], [0x4200AD, 'Certificate Length'], [0x4200AE, 'Digital Signature Algorithm'],
  [0x4200AF, 'Certificate Serial Number'], [0x4200B0, 'Device Serial Number'], [0x4200B1, 'Issuer Alternative Name'],
  [0x4200B2, 'Issuer Distinguished Name'], [0x4200B3, 'Subject Alternative Name'], [0x4200B4, 'Subject Distinguished Name'],
  [0x4200B5, 'X.509 Certificate Identifier'], [0x4200B6, 'X.509 Certificate Issuer'], [0x4200B7, 'X.509 Certificate Subject'],
  [0x4200B8, 'Key Value Location'], [0x4200B9, 'Key Value Location Value'], [0x4200BA, 'Key Value Location Type'],
  [0x4200BB, 'Key Value Present'], [0x4200BC, 'Original Creation Date'], [0x4200BD, 'PGP Key'],
  [0x4200BE, 'PGP Key Version'], [0x4200BF, 'Alternative Name'], [0x4200C0, 'Alternative Name Value'],
  [0x4200C1, 'Alternative Name Type'], [0x4200C2, 'Data'], [0x4200C3, 'Signature Data'], [0x4200C4, 'Data Length'],
  [0x4200C5, 'Random IV'], [0x4200C6, 'MAC Data'], [0x4200C7, 'Attestation Type'], [0x4200C8, 'Nonce'],
  [0x4200C9, 'Nonce ID'], [0x4200CA, 'Nonce Value'], [0x4200CB, 'Attestation Measurement'],
  [0x4200CC, 'Attestation Assertion'], [0x4200CD, 'IV Length'], [0x4200CE, 'Tag Length'], [0x4200CF, 'Fixed Field Length'],
  [0x4200D0, 'Counter Length'], [0x4200D1, 'Initial Counter Value'], [0x4200D2, 'Invocation Field Length'],
  [0x4200D3, 'Attestation Capable Indicator'],
];

const TAG_NAMES = new Map<number, string>(TAG_LIST);
const TAG_BY_NAME = new Map<string, number>(TAG_LIST.map(([t, n]) => [n, t]));

export function tagName(tag: number): string {
  return TAG_NAMES.get(tag) ?? tagHex(tag);
}

export function tagHex(tag: number): string {
  return `0x${tag.toString(16).toUpperCase().padStart(6, '0')}`;
}

/** Tag number from a name ("Request Message") or hex ("0x420078", "420078"). */
export function tagFromName(name: string): number | undefined {
  const known = TAG_BY_NAME.get(name);
  if (known !== undefined) return known;
  const m = /^(?:0x)?([0-9a-fA-F]{6})$/.exec(name);
  return m ? parseInt(m[1]!, 16) : undefined;
}

/** Tag number for a known name; throws on a typo (programming error, not input error). */
export function T(name: string): number {
  const t = TAG_BY_NAME.get(name);
  if (t === undefined) throw new Error(`unknown KMIP tag name "${name}"`);
  return t;
}

const list = (names: string[], first = 1): Record<number, string> =>
  Object.fromEntries(names.map((n, i) => [i + first, n]));

export const OPERATIONS = list([
  'Create', 'Create Key Pair', 'Register', 'Re-key', 'Derive Key', 'Certify', 'Re-certify', 'Locate', 'Check', 'Get',
  'Get Attributes', 'Get Attribute List', 'Add Attribute', 'Modify Attribute', 'Delete Attribute', 'Obtain Lease',
  'Get Usage Allocation', 'Activate', 'Revoke', 'Destroy', 'Archive', 'Recover', 'Validate', 'Query', 'Cancel', 'Poll',
  'Notify', 'Put', 'Re-key Key Pair', 'Discover Versions', 'Encrypt', 'Decrypt', 'Sign', 'Signature Verify', 'MAC',
  'MAC Verify', 'RNG Retrieve', 'RNG Seed', 'Hash', 'Create Split Key', 'Join Split Key',
]);

export const RESULT_REASONS: Record<number, string> = {
  ...list([
    'Item Not Found', 'Response Too Large', 'Authentication Not Successful', 'Invalid Message', 'Operation Not Supported',
    'Missing Data', 'Invalid Field', 'Feature Not Supported', 'Operation Canceled By Requester', 'Cryptographic Failure',
    'Illegal Operation', 'Permission Denied', 'Object Archived', 'Index Out of Bounds', 'Application Namespace Not Supported',
    'Key Format Type Not Supported', 'Key Compression Type Not Supported', 'Encoding Option Error', 'Key Value Not Present',
    'Attestation Required', 'Attestation Failed',
  ]),
  0x100: 'General Failure',
};

/** Enumerations by the tag that carries them. Attribute Values use ATTRIBUTE_ENUMS via their Attribute Name. */
export const ENUMS: Record<number, Record<number, string>> = {
  [T('Operation')]: OPERATIONS,
  [T('Result Status')]: { 0: 'Success', 1: 'Operation Failed', 2: 'Operation Pending', 3: 'Operation Undone' },
  [T('Result Reason')]: RESULT_REASONS,
  [T('Object Type')]: list(['Certificate', 'Symmetric Key', 'Public Key', 'Private Key', 'Split Key', 'Template',
    'Secret Data', 'Opaque Object', 'PGP Key']),
  [T('Query Function')]: list(['Query Operations', 'Query Objects', 'Query Server Information',
    'Query Application Namespaces', 'Query Extension List', 'Query Extension Map', 'Query Attestation Types']),
  [T('Credential Type')]: list(['Username and Password', 'Device', 'Attestation']),
  [T('Cryptographic Algorithm')]: list(['DES', '3DES', 'AES', 'RSA', 'DSA', 'ECDSA', 'HMAC-SHA1', 'HMAC-SHA224',
    'HMAC-SHA256', 'HMAC-SHA384', 'HMAC-SHA512', 'HMAC-MD5', 'DH', 'ECDH', 'ECMQV', 'Blowfish', 'Camellia', 'CAST5', 'IDEA',
    'MARS', 'RC2', 'RC4', 'RC5', 'SKIPJACK', 'Twofish', 'EC']),
  [T('Hashing Algorithm')]: list(['MD2', 'MD4', 'MD5', 'SHA-1', 'SHA-224', 'SHA-256', 'SHA-384', 'SHA-512', 'RIPEMD-160',
    'Tiger', 'Whirlpool', 'SHA-512/224', 'SHA-512/256']),
  [T('Padding Method')]: list(['None', 'OAEP', 'PKCS5', 'SSL3', 'Zeros', 'ANSI X9.23', 'ISO 10126', 'PKCS1 v1.5', 'X9.31', 'PSS']),
  [T('Block Cipher Mode')]: list(['CBC', 'ECB', 'PCBC', 'CFB', 'OFB', 'CTR', 'CMAC', 'CCM', 'GCM', 'CBC-MAC', 'XTS',
    'AESKeyWrapPadding', 'NISTKeyWrap', 'X9.102 AESKW', 'X9.102 TDKW', 'X9.102 AKW1', 'X9.102 AKW2']),
  [T('Key Format Type')]: list(['Raw', 'Opaque', 'PKCS#1', 'PKCS#8', 'X.509', 'ECPrivateKey', 'Transparent Symmetric Key',
    'Transparent DSA Private Key', 'Transparent DSA Public Key', 'Transparent RSA Private Key', 'Transparent RSA Public Key',
    'Transparent DH Private Key', 'Transparent DH Public Key', 'Transparent ECDSA Private Key', 'Transparent ECDSA Public Key',
    'Transparent ECDH Private Key', 'Transparent ECDH Public Key', 'Transparent ECMQV Private Key',
    'Transparent ECMQV Public Key']),
  [T('Name Type')]: list(['Uninterpreted Text String', 'URI']),
  [T('Revocation Reason Code')]: list(['Unspecified', 'Key Compromise', 'CA Compromise', 'Affiliation Changed',
    'Superseded', 'Cessation of Operation', 'Privilege Withdrawn']),
  [T('State')]: list(['Pre-Active', 'Active', 'Deactivated', 'Compromised', 'Destroyed', 'Destroyed Compromised']),
  [T('Batch Error Continuation Option')]: list(['Continue', 'Stop', 'Undo']),
  [T('Digital Signature Algorithm')]: list(['MD2 with RSA Encryption', 'MD5 with RSA Encryption',
    'SHA-1 with RSA Encryption', 'SHA-224 with RSA Encryption', 'SHA-256 with RSA Encryption',
    'SHA-384 with RSA Encryption', 'SHA-512 with RSA Encryption', 'RSASSA-PSS', 'DSA with SHA-1', 'DSA with SHA224',
    'DSA with SHA256', 'ECDSA with SHA-1', 'ECDSA with SHA224', 'ECDSA with SHA256', 'ECDSA with SHA384',
    'ECDSA with SHA512']),
  [T('Recommended Curve')]: list(['P-192', 'K-163', 'B-163', 'P-224', 'K-233', 'B-233', 'P-256', 'K-283', 'B-283',
    'P-384', 'K-409', 'B-409', 'P-521', 'K-571', 'B-571']),
  [T('Link Type')]: { 0x101: 'Certificate Link', 0x102: 'Public Key Link', 0x103: 'Private Key Link',
    0x104: 'Derivation Base Object Link', 0x105: 'Derived Key Link', 0x106: 'Replacement Object Link',
    0x107: 'Replaced Object Link', 0x108: 'Parent Link', 0x109: 'Child Link', 0x10A: 'Previous Link', 0x10B: 'Next Link' },
  [T('Validity Indicator')]: list(['Valid', 'Invalid', 'Unknown']),
};

/** Attribute Name → the enumeration its Attribute Value uses (for rendering Attribute Values by name). */
export const ATTRIBUTE_ENUMS: Record<string, Record<number, string>> = {
  'Object Type': ENUMS[T('Object Type')]!,
  'Cryptographic Algorithm': ENUMS[T('Cryptographic Algorithm')]!,
  'State': ENUMS[T('State')]!,
};

export function enumName(table: Record<number, string> | undefined, value: number): string | undefined {
  return table?.[value];
}

export function enumValue(table: Record<number, string> | undefined, name: string): number | undefined {
  if (!table) return undefined;
  for (const [k, v] of Object.entries(table)) if (v === name) return Number(k);
  return undefined;
}

/** Enumeration value by (tag name, value name), for building messages; throws on a typo. */
export function E(tag: string, name: string): number {
  const v = enumValue(ENUMS[T(tag)], name);
  if (v === undefined) throw new Error(`unknown ${tag} value "${name}"`);
  return v;
}

/** Operation code → name ("Sign"), or hex for codes outside the table. */
export function operationName(code: number): string {
  return OPERATIONS[code] ?? `0x${code.toString(16).padStart(8, '0')}`;
}
