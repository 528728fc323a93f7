/**
 * containers/softhsm/entrypoint.sh run for real on this machine (no container runtime needed): its paths are
 * environment variables, pointed here at temporary directories. Real SoftHSM, real p11-kit server, reached
 * through the real p11-kit-client.so, exactly as the host reaches the container's bind-mounted socket.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { P11KIT_CLIENT } from '../../src/p11kit.js';
import { randomPin } from '../../src/softhsm.js';
import { killTree } from '../../src/proc.js';
import type { RunResults } from '../../src/results.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const ENTRYPOINT = join(ROOT, 'containers', 'softhsm', 'entrypoint.sh');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const LABEL = 'entrypoint-test';

interface Served {
  dir: string;
  socket: string;
  child: ChildProcess;
  log: () => string;
}

/** Start the entrypoint against temporary directories and wait for its socket. */
async function serve(pin: string, extraEnv: Record<string, string> = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'hh-entrypoint-'));
  // Another uid must reach the socket (as the host user reaches the container's bind-mounted directory).
  if (extraEnv.P11_KIT_CLIENT_UID) chmodSync(dir, 0o755);
  const socket = join(dir, 'run', 'pkcs11');
  let out = '';
  const child = spawn('sh', [ENTRYPOINT], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      SOFTHSM_PIN: pin,
      SOFTHSM_SO_PIN: randomPin(),
      SOFTHSM_TOKEN_LABEL: LABEL,
      SOFTHSM_SPARE_TOKENS: '1',
      SOFTHSM_TOKEN_DIR: join(dir, 'tokens'),
      SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
      P11_KIT_SOCKET_DIR: join(dir, 'run'),
      ...extraEnv,
    },
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  // The socket can appear a moment before p11-kit prints its address line: wait for both.
  for (let i = 0; i < 200 && !(existsSync(socket) && out.includes('P11_KIT_SERVER_ADDRESS=')); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) {
    killTree(child.pid!);
    throw new Error(`entrypoint did not create ${socket}: ${out}`);
  }
  return { dir, socket, child, log: () => out };
}

function stop(s: Served | undefined): void {
  if (!s) return;
  killTree(s.child.pid!);
  rmSync(s.dir, { recursive: true, force: true });
}

describe('containers/softhsm/entrypoint.sh on a local SoftHSM and p11-kit', () => {
  const pin = randomPin();
  let served: Served;
  beforeAll(async () => {
    served = await serve(pin);
  });
  afterAll(() => stop(served));

  test('it initialises the token and a spare, then serves both on the socket', () => {
    const log = served.log();
    expect(log).toContain(`initialised token ${LABEL}\n`);
    expect(log).toContain(`initialised token ${LABEL}-spare-1\n`);
    expect(log).toContain(`P11_KIT_SERVER_ADDRESS=unix:path=${served.socket};`);
    expect(log).not.toContain(pin);
    expect(readFileSync(join(served.dir, 'softhsm2.conf'), 'utf8')).toContain(`directories.tokendir = ${join(served.dir, 'tokens')}`);
  });

  test('pkcs11-tool through p11-kit-client.so sees both tokens and logs in', async () => {
    const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${served.socket}` };
    const list = await exec('pkcs11-tool', ['--module', P11KIT_CLIENT, '--list-token-slots'], { env });
    expect(list.stdout).toMatch(new RegExp(`token label\\s+: ${LABEL}\\n`));
    expect(list.stdout).toMatch(new RegExp(`token label\\s+: ${LABEL}-spare-1\\n`));
    // A login with the PIN the entrypoint was given.
    const login = await exec('pkcs11-tool', ['--module', P11KIT_CLIENT, '--token-label', LABEL, '--login', '--pin', pin, '--list-objects'], { env });
    expect(login.stderr).not.toMatch(/CKR_PIN_INCORRECT|error/i);
  });

  test('the second socket, pkcs11-alone, shows the main token and not the spare (what a signer is given)', async () => {
    const alone = join(served.dir, 'run', 'pkcs11-alone');
    for (let i = 0; i < 100 && !existsSync(alone); i++) await new Promise((r) => setTimeout(r, 50));
    const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${alone}` };
    const list = await exec('pkcs11-tool', ['--module', P11KIT_CLIENT, '--list-token-slots'], { env });
    expect([...list.stdout.matchAll(/token label\s+: (.*)\n/g)].map((m) => m[1]!.trim())).toEqual([LABEL]);
  });

  test("the harness's PKCS#11 signing suite runs unchanged through the socket (pkcs11 driver, p11-kit-client.so)", async () => {
    const out = join(served.dir, 'reports');
    const r = await exec('node', [CLI, 'run', '--driver', 'pkcs11', '--suite', 'signing', '--out', out, '--quiet'], {
      timeout: 90_000,
      env: {
        ...process.env,
        HSM_PKCS11_URI: '',
        HSM_PKCS11_MODULE: P11KIT_CLIENT,
        HSM_PKCS11_TOKEN: LABEL,
        HSM_PKCS11_PIN: pin,
        HSM_PKCS11_EPHEMERAL: '1',
        P11_KIT_SERVER_ADDRESS: `unix:path=${served.socket}`,
      },
    }).catch((e: { stdout: string; stderr: string }) => e);
    expect(existsSync(join(out, 'results.json')), `no results.json; stderr: ${r.stderr}`).toBe(true);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    const d = results.drivers.find((x) => x.id === 'pkcs11')!;
    expect(d.status).toBe('ran');
    const byName = Object.fromEntries(d.cases.map((c) => [`${c.suite}/${c.case}`, c.status]));
    expect(byName['signing/CKM_ECDSA/ec-p256']).toBe('pass');
    expect(byName['signing/CKM_RSA_PKCS/rsa-2048']).toBe('pass');
    expect(byName['cleanup/objects-restored']).toBe('pass');
    expect(d.cases.filter((c) => ['fail', 'crash', 'timeout'].includes(c.status))).toEqual([]);
  });
});

// p11-kit server refuses peers whose uid it was not told about; the entrypoint names the host's uid/gid
// inside the container. Here: serve for uid 65534 (nobody) and connect as nobody, and as ourselves.
describe.skipIf(process.getuid?.() !== 0)('entrypoint P11_KIT_CLIENT_UID/GID (needs root to switch users)', () => {
  let served: Served | undefined;
  afterAll(() => stop(served));

  test('the named client uid is let in, another uid is refused', async () => {
    served = await serve(randomPin(), { P11_KIT_CLIENT_UID: '65534', P11_KIT_CLIENT_GID: '65534' });
    const args = ['--module', P11KIT_CLIENT, '--list-token-slots'];
    const env = { PATH: process.env.PATH, P11_KIT_SERVER_ADDRESS: `unix:path=${served.socket}` };
    const asNobody = await new Promise<string>((resolve) => {
      const c = spawn('pkcs11-tool', args, { uid: 65534, gid: 65534, env });
      let o = '';
      c.stdout.on('data', (d: Buffer) => {
        o += d.toString();
      });
      c.on('close', () => resolve(o));
    });
    expect(asNobody).toMatch(new RegExp(`token label\\s+: ${LABEL}\\n`));
    const asRoot = await exec('pkcs11-tool', args, { env }).catch((e: { stdout: string }) => e);
    expect(asRoot.stdout).not.toContain(LABEL);
  });
});

test("an ECDSA signature made through the entrypoint's socket verifies with node:crypto", async () => {
  // Sign with pkcs11-tool through the entrypoint's socket, verify the ECDSA signature with node:crypto.
  const pin = randomPin();
  const s = await serve(pin);
  try {
    const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${s.socket}` };
    const base = ['--module', P11KIT_CLIENT, '--token-label', LABEL, '--login', '--pin', pin];
    await exec('pkcs11-tool', [...base, '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '01', '--label', 'ep-test'], { env });
    const data = join(s.dir, 'data');
    const sig = join(s.dir, 'sig');
    const pub = join(s.dir, 'pub.der');
    const message = Buffer.from('signed through the SoftHSM container entrypoint');
    writeFileSync(data, createHash('sha256').update(message).digest());
    await exec(
      'pkcs11-tool',
      [...base, '--sign', '--mechanism', 'ECDSA', '--id', '01', '--signature-format', 'openssl', '--input-file', data, '--output-file', sig],
      { env },
    );
    await exec('pkcs11-tool', [...base, '--read-object', '--type', 'pubkey', '--id', '01', '--output-file', pub], { env });
    const key = createPublicKey({ key: readFileSync(pub), format: 'der', type: 'spki' });
    expect(verify('sha256', message, key, readFileSync(sig))).toBe(true);
    await exec('pkcs11-tool', [...base, '--delete-object', '--type', 'privkey', '--id', '01'], { env });
    await exec('pkcs11-tool', [...base, '--delete-object', '--type', 'pubkey', '--id', '01'], { env });
  } finally {
    stop(s);
  }
});
