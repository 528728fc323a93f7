/**
 * The cascade-hsm-bridge config writer, checked against the keys the bridge documents (docs/kmip-profile.md §5;
 * crates/cfg/src/v1 and etc/config.toml for v1; the 0.1.0-alpha flat keys), and the driver's availability
 * rules. The bridge itself is not installed here, so its config is checked by shape.
 */
import { describe, expect, test } from 'vitest';
import { bridgeConfigFlat, bridgeConfigV1, driver, parseAddr } from '../../drivers/cascade-hsm-bridge.js';

/** A minimal TOML reader for what the writer emits: [sections], key = "string" | number | { inline table }. */
function parseToml(text: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = { '': {} };
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[([a-z0-9.-]+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      out[section] ??= {};
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
    if (kv[1]! in out[section]!) throw new Error(`duplicate key ${kv[1]}`);
    out[section]![kv[1]!] = value;
  }
  return out;
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
    const t = parseToml(bridgeConfigV1(cfg));
    expect(t['']).toEqual({ version: 'v1' });
    expect(t.pkcs11).toEqual({ 'lib-path': cfg.libPath });
    expect(t.server).toEqual({ addr: '127.0.0.1:15696' });
    expect(t['server.identity']).toEqual({ 'cert-path': cfg.certPath, 'key-path': cfg.keyPath });
    expect(Object.keys(t.daemon!).sort()).toEqual(['log-level', 'log-target']);
    expect(t.daemon!['log-target']).toEqual({ type: 'file', path: cfg.logFile });
    expect(['trace', 'debug', 'info', 'warning', 'error']).toContain(t.daemon!['log-level']);
  });

  test('flat 0.1.0-alpha format has no sections and only the documented snake_case keys', () => {
    const t = parseToml(bridgeConfigFlat(cfg));
    expect(Object.keys(t)).toEqual(['']);
    const documented = ['lib_path', 'addr', 'port', 'cert_path', 'key_path', 'log_level', 'log_target', 'log_facility', 'log_file'];
    for (const k of Object.keys(t['']!)) expect(documented).toContain(k);
    expect(t['']).toMatchObject({ lib_path: cfg.libPath, addr: '127.0.0.1', port: 15696, cert_path: cfg.certPath, key_path: cfg.keyPath });
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
