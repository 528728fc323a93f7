/**
 * The cascade-hsm-bridge config writer, checked against the keys the bridge documents (docs/kmip-profile.md §5;
 * crates/cfg/src/v1 and etc/config.toml for v1; the 0.1.0-alpha flat keys), and the driver's availability
 * rules. The bridge itself is not installed here, so its config is checked by shape.
 */
import { describe, expect, test } from 'vitest';
import { bridgeConfigFlat, bridgeConfigV1, driver, parseAddr } from '../../drivers/cascade-hsm-bridge.js';

/**
 * A minimal TOML reader for what the writer emits, independent of the TOML library that writes it: [dotted.sections]
 * nest, key = "string" | number | { inline table }.
 */
type Table = Record<string, unknown>;
function parseToml(text: string): Table {
  const root: Table = {};
  let section = root;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[([a-z0-9.-]+)\]$/.exec(line);
    if (sec) {
      section = root;
      for (const part of sec[1]!.split('.')) section = (section[part] ??= {}) as Table;
      continue;
    }
    const kv = /^([a-z_-]+) = (.+)$/.exec(line);
    if (!kv) throw new Error(`not a TOML key/value line: ${line}`);
    const v = kv[2]!;
    let value: unknown;
    if (/^"([^"\\]|\\.)*"$/.test(v)) value = JSON.parse(v);
    else if (/^\d+$/.test(v)) value = Number(v);
    else if (/^\{.*\}$/.test(v))
      value = Object.fromEntries([...v.slice(1, -1).matchAll(/([a-z]+) = ("(?:[^"\\]|\\.)*")/g)].map((m) => [m[1], JSON.parse(m[2]!)]));
    else throw new Error(`unsupported TOML value: ${v}`);
    if (kv[1]! in section) throw new Error(`duplicate key ${kv[1]}`);
    section[kv[1]!] = value;
  }
  return root;
}

const cfg = {
  libPath: '/usr/lib/softhsm/libsofthsm2.so',
  host: '127.0.0.1',
  port: 15696,
  certPath: '/tmp/x y/server.pem',
  keyPath: '/tmp/x y/server.key',
  logFile: '/tmp/b.log',
};

describe('cascade-hsm-bridge config', () => {
  test('v1 format uses exactly the documented sections and kebab-case keys', () => {
    const t = parseToml(bridgeConfigV1(cfg)) as Record<string, Table>;
    expect(Object.keys(t)).toEqual(['version', 'pkcs11', 'server', 'daemon']);
    expect(t.version).toBe('v1');
    expect(t.pkcs11).toEqual({ 'lib-path': cfg.libPath });
    expect(t.server).toEqual({ addr: '127.0.0.1:15696', identity: { 'cert-path': cfg.certPath, 'key-path': cfg.keyPath } });
    expect(Object.keys(t.daemon!).sort()).toEqual(['log-level', 'log-target']);
    expect(t.daemon!['log-target']).toEqual({ type: 'file', path: cfg.logFile });
    expect(['trace', 'debug', 'info', 'warning', 'error']).toContain(t.daemon!['log-level']);
  });

  test('v1 text for a fixed input is exactly the TOML written out by hand here, quotes and backslashes escaped', () => {
    const odd = { ...cfg, certPath: '/tmp/a "b"/c\\d.pem', logLevel: 'debug' as const };
    expect(bridgeConfigV1(odd)).toBe(
      [
        'version = "v1"',
        '',
        '[pkcs11]',
        'lib-path = "/usr/lib/softhsm/libsofthsm2.so"',
        '',
        '[server]',
        'addr = "127.0.0.1:15696"',
        '',
        '[server.identity]',
        'cert-path = "/tmp/a \\"b\\"/c\\\\d.pem"',
        'key-path = "/tmp/x y/server.key"',
        '',
        '[daemon]',
        'log-level = "debug"',
        '',
        '[daemon.log-target]',
        'type = "file"',
        'path = "/tmp/b.log"',
        '',
      ].join('\n'),
    );
  });

  test('flat 0.1.0-alpha format has no sections and only the documented snake_case keys', () => {
    const t = parseToml(bridgeConfigFlat(cfg));
    for (const v of Object.values(t)) expect(typeof v).not.toBe('object');
    const documented = ['lib_path', 'addr', 'port', 'cert_path', 'key_path', 'log_level', 'log_target', 'log_facility', 'log_file'];
    for (const k of Object.keys(t)) expect(documented).toContain(k);
    expect(t).toMatchObject({ lib_path: cfg.libPath, addr: '127.0.0.1', port: 15696, cert_path: cfg.certPath, key_path: cfg.keyPath });
  });
});

describe('cascade-hsm-bridge availability', () => {
  const noBridge = { PATH: '/usr/bin:/bin' };
  test('unavailable without env or binary, with the reason naming both ways', async () => {
    const a = await driver.probe(noBridge);
    expect(a.ok).toBe(false);
    expect(a.reason).toMatch(/KMIP_BRIDGE_ADDR/);
    expect(a.reason).toMatch(/KMIP_BRIDGE_BIN/);
  });
  test('an external address needs username, password and a CA or explicit insecure mode', async () => {
    const partial = await driver.probe({ ...noBridge, KMIP_BRIDGE_ADDR: '127.0.0.1:5696', KMIP_USERNAME: 'tok' });
    expect(partial.ok).toBe(false);
    expect(partial.reason).toMatch(/KMIP_PASSWORD/);
    expect(partial.reason).toMatch(/KMIP_INSECURE/);
    const full = await driver.probe({ ...noBridge, KMIP_BRIDGE_ADDR: '127.0.0.1:5696', KMIP_USERNAME: 'tok', KMIP_PASSWORD: 'pw', KMIP_INSECURE: '1' });
    expect(full.ok).toBe(true);
    expect(full.reason).not.toMatch(/pw/);
  });
  test('KMIP_BRIDGE_BIN that is not executable is named', async () => {
    const a = await driver.probe({ ...noBridge, KMIP_BRIDGE_BIN: '/nonexistent/cascade-hsm-bridge' });
    expect(a.ok).toBe(false);
    expect(a.reason).toMatch(/KMIP_BRIDGE_BIN=\/nonexistent/);
  });
  test('addresses', () => {
    expect(parseAddr('10.0.0.1:7000')).toEqual({ host: '10.0.0.1', port: 7000 });
    expect(parseAddr('[::1]:5696')).toEqual({ host: '::1', port: 5696 });
    expect(parseAddr('kmip.example')).toEqual({ host: 'kmip.example', port: 5696 });
    expect(() => parseAddr('a:b:c')).toThrow(/KMIP_BRIDGE_ADDR/);
  });
});
