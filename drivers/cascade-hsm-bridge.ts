/**
 * NLnet Labs' cascade-hsm-bridge (formerly kmip2pkcs11): KMIP 1.2 → PKCS#11, the part of KMIP Cascade needs.
 * Reached either
 *  (a) as an external server: KMIP_BRIDGE_ADDR (host:port), KMIP_USERNAME (the token label), KMIP_PASSWORD
 *      (the user PIN), plus KMIP_CA (PEM file) or KMIP_INSECURE=1; or
 *  (b) from a binary (KMIP_BRIDGE_BIN, or cascade-hsm-bridge / kmip2pkcs11 on PATH) that the harness starts on
 *      a fresh SoftHSM token and a free loopback port, with a config written in the current `version = "v1"`
 *      format and, for the 0.1.0-alpha release, the older flat format (docs/kmip-profile.md §5).
 * Otherwise it is unavailable, with that reason.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as stringifyToml } from 'smol-toml';
import type { Driver, KmipConnection } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { which } from '../src/proc.js';
import { registerSecret } from '../src/secrets.js';
import { SoftHsmStore, SOFTHSM_MODULE, softhsmAvailable } from '../src/softhsm.js';
import { makeTestPki } from '../src/kmip/pki.js';
import { freePort, launchServer } from '../src/kmip/launch.js';
import type { LaunchedServer } from '../src/kmip/launch.js';
import { UsageError } from '../src/errors.js';

const HOST = '127.0.0.1';
const TOKEN_LABEL = 'cascade-hsm-bridge-test';
const BINARIES = ['cascade-hsm-bridge', 'kmip2pkcs11'];

export interface BridgeConfig {
  libPath: string;
  host: string;
  port: number;
  certPath: string;
  keyPath: string;
  logFile: string;
  logLevel?: 'trace' | 'debug' | 'info' | 'warning' | 'error';
}

/** The current config format (crates/cfg/src/v1, etc/config.toml); kebab-case keys, unknown keys rejected. */
export function bridgeConfigV1(c: BridgeConfig): string {
  return stringifyToml({
    version: 'v1',
    pkcs11: { 'lib-path': c.libPath },
    server: { addr: `${c.host}:${c.port}`, identity: { 'cert-path': c.certPath, 'key-path': c.keyPath } },
    daemon: { 'log-level': c.logLevel ?? 'info', 'log-target': { type: 'file', path: c.logFile } },
  });
}

/** The 0.1.0-alpha flat format: snake_case keys, no sections, address and port separate. */
export function bridgeConfigFlat(c: BridgeConfig): string {
  return stringifyToml({
    lib_path: c.libPath,
    addr: c.host,
    port: c.port,
    cert_path: c.certPath,
    key_path: c.keyPath,
    log_level: c.logLevel ?? 'info',
    log_target: 'file',
    log_file: c.logFile,
  });
}

async function findBinary(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (env.KMIP_BRIDGE_BIN) return (await which(env.KMIP_BRIDGE_BIN)) ?? undefined;
  for (const b of BINARIES) {
    const p = await which(b);
    if (p) return p;
  }
  return undefined;
}

/** host:port, [v6]:port or host (port 5696). */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(addr.trim());
  const port = m?.[3] ? Number(m[3]) : 5696;
  if (!m || port < 1 || port > 65535) throw new UsageError(`KMIP_BRIDGE_ADDR "${addr}" is not host:port; set it like 127.0.0.1:5696`);
  return { host: (m[1] ?? m[2])!, port };
}

function externalMissing(env: NodeJS.ProcessEnv): string[] {
  const missing = ['KMIP_USERNAME', 'KMIP_PASSWORD'].filter((k) => !env[k]);
  if (!env.KMIP_CA && env.KMIP_INSECURE !== '1') missing.push('KMIP_CA (or KMIP_INSECURE=1)');
  return missing;
}

export const driver: Driver = {
  id: 'cascade-hsm-bridge',
  title: 'cascade-hsm-bridge (KMIP → PKCS#11)',
  order: 70,
  envVars: ['KMIP_BRIDGE_ADDR', 'KMIP_BRIDGE_BIN', 'KMIP_USERNAME', 'KMIP_PASSWORD', 'KMIP_CA', 'KMIP_INSECURE'],
  kind: 'kmip',
  traits: { ...DEFAULT_TRAITS, maxConcurrency: 4 },
  async probe(env) {
    if (env.KMIP_BRIDGE_ADDR) {
      const missing = externalMissing(env);
      if (missing.length) return { ok: false, reason: `KMIP_BRIDGE_ADDR is set but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not` };
      if (env.KMIP_CA && !existsSync(env.KMIP_CA))
        throw new UsageError(`KMIP_CA ${env.KMIP_CA} does not exist; point it at the bridge's CA certificate (PEM) or set KMIP_INSECURE=1`);
      const { host, port } = parseAddr(env.KMIP_BRIDGE_ADDR);
      return { ok: true, reason: `external bridge at ${host}:${port}${env.KMIP_INSECURE === '1' ? ' (certificate not verified: KMIP_INSECURE=1)' : ''}` };
    }
    const bin = await findBinary(env);
    if (bin) {
      const soft = await softhsmAvailable();
      if (!soft.ok) return { ok: false, reason: `${bin} found, but ${soft.reason}` };
      return { ok: true, reason: `${bin} started by the harness on a fresh SoftHSM token, 127.0.0.1` };
    }
    return {
      ok: false,
      reason: env.KMIP_BRIDGE_BIN
        ? `KMIP_BRIDGE_BIN=${env.KMIP_BRIDGE_BIN} is not an executable file`
        : 'no cascade-hsm-bridge: set KMIP_BRIDGE_ADDR, KMIP_USERNAME, KMIP_PASSWORD and KMIP_CA (or KMIP_INSECURE=1), or put cascade-hsm-bridge/kmip2pkcs11 on PATH or in KMIP_BRIDGE_BIN',
    };
  },
  async start(env) {
    if (env.KMIP_BRIDGE_ADDR) {
      registerSecret(env.KMIP_PASSWORD, 'KMIP_PASSWORD');
      const { host, port } = parseAddr(env.KMIP_BRIDGE_ADDR);
      const kmip: KmipConnection = {
        host,
        port,
        ca: env.KMIP_CA || undefined,
        insecure: env.KMIP_INSECURE === '1',
        username: env.KMIP_USERNAME,
        password: env.KMIP_PASSWORD,
        profile: 'cascade-hsm-bridge',
        launchedByHarness: false,
      };
      return {
        connections: { kmip },
        info: { server: 'cascade-hsm-bridge (external)', address: `${host}:${port}` },
        async stop() {},
      };
    }
    const bin = await findBinary(env);
    if (!bin) throw new Error('cascade-hsm-bridge binary disappeared after the probe');
    const store = await SoftHsmStore.create();
    let server: LaunchedServer | undefined;
    try {
      const token = await store.addToken(TOKEN_LABEL);
      const pki = await makeTestPki(store.dir);
      const port = await freePort(HOST);
      const cfg: BridgeConfig = {
        libPath: SOFTHSM_MODULE,
        host: HOST,
        port,
        certPath: pki.serverCert,
        keyPath: pki.serverKey,
        logFile: join(store.dir, 'bridge.log'),
      };
      const configs = [
        { format: 'v1', path: join(store.dir, 'config-v1.toml'), text: bridgeConfigV1(cfg) },
        { format: 'flat (0.1.0-alpha)', path: join(store.dir, 'config-flat.toml'), text: bridgeConfigFlat(cfg) },
      ];
      for (const c of configs) await writeFile(c.path, c.text);
      let used = '';
      const launch = async () => {
        const errors: string[] = [];
        for (const c of configs) {
          try {
            server = await launchServer({
              cmd: bin,
              args: ['-c', c.path],
              env: { ...process.env, ...store.env },
              logFile: join(store.dir, 'stdout.log'),
              host: HOST,
              port,
              what: `${bin} (${c.format} config)`,
              readyTimeoutMs: 15_000,
            });
            used = c.format;
            return;
          } catch (err) {
            errors.push((err as Error).message);
          }
        }
        throw new Error(errors.join('; '));
      };
      await launch();
      const kmip: KmipConnection = {
        host: HOST,
        port,
        ca: pki.ca,
        username: token.label,
        password: token.pin,
        profile: 'cascade-hsm-bridge',
        launchedByHarness: true,
        async restart() {
          await server?.stop(1000);
          await launch();
        },
      };
      return {
        connections: { kmip },
        info: { server: 'cascade-hsm-bridge', executable: bin, address: `${HOST}:${port}`, configFormat: used, token: TOKEN_LABEL },
        async stop() {
          await server?.stop();
          await store.remove();
        },
      };
    } catch (err) {
      await server?.stop(200);
      await store.remove();
      throw err;
    }
  },
};
