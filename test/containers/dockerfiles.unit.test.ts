/**
 * Lint for containers/*, which runs with or without an engine (the images are built for real by
 * test/containers/engine.slow.test.ts when one is given): pinned bases, no floating tags, the bridge repository as build arguments, an ENTRYPOINT,
 * and every file they reference present in the build context.
 */
import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinnedImage, FLOATING_TAGS, LOCAL_BASE_IMAGE, REGISTRY_BASE_IMAGE } from '../../src/containers/images.js';

const CONTAINERS = join(import.meta.dirname, '..', '..', 'containers');

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!buf && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    buf += (buf ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(buf);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
    buf = '';
  }
  return out;
}

function argsDeclared(ins: Instruction[]): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const i of ins.filter((x) => x.op === 'ARG')) {
    const [name, ...rest] = i.args.split('=');
    m.set(name!.trim(), rest.length ? rest.join('=') : undefined);
  }
  return m;
}

const dockerfiles = readdirSync(CONTAINERS).filter((d) => existsSync(join(CONTAINERS, d, 'Dockerfile')));

describe('containers/*/Dockerfile', () => {
  test('there are the three images', () => {
    expect(dockerfiles.sort()).toEqual(['bridge', 'nethsm', 'softhsm']);
  });

  for (const name of dockerfiles) {
    const ins = parseDockerfile(readFileSync(join(CONTAINERS, name, 'Dockerfile'), 'utf8'));
    test(`${name}: every FROM names a pinned tag (or a build argument that does), never a floating one`, () => {
      const froms = ins.filter((i) => i.op === 'FROM');
      expect(froms.length).toBeGreaterThan(0);
      const args = argsDeclared(ins);
      for (const f of froms) {
        let image = f.args.split(/\s+/)[0]!;
        const ref = /^\$\{?(\w+)\}?$/.exec(image);
        if (ref) {
          expect(args.has(ref[1]!), `${image} is declared with ARG`).toBe(true);
          image = args.get(ref[1]!) ?? '';
        }
        const tag = /:([^/:@]+)$/.exec(image)?.[1];
        expect(tag, `${image} has a tag`).toBeDefined();
        expect(FLOATING_TAGS.has(tag!), `${image} is not floating`).toBe(false);
      }
    });

    test(`${name}: every COPY source exists in the build context`, () => {
      for (const c of ins.filter((i) => i.op === 'COPY')) {
        const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) expect(existsSync(join(CONTAINERS, name, src)), `${name}/${src}`).toBe(true);
      }
    });
  }

  test('softhsm: Debian bookworm (slim from the registry by default) with softhsm2 and p11-kit; its ENTRYPOINT is the copied entrypoint.sh', () => {
    const ins = parseDockerfile(readFileSync(join(CONTAINERS, 'softhsm', 'Dockerfile'), 'utf8'));
    // The base is a build argument, so the harness can pass the same release built from the Debian mirror.
    expect(ins.find((i) => i.op === 'FROM')!.args).toBe('${BASE_IMAGE}');
    expect(argsDeclared(ins).get('BASE_IMAGE')).toBe(REGISTRY_BASE_IMAGE);
    expect(REGISTRY_BASE_IMAGE).toBe('debian:bookworm-slim');
    expect(LOCAL_BASE_IMAGE).toMatch(/:bookworm$/);
    const run = ins
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join(' ');
    expect(run).toMatch(/apt-get install[^&]*\bsofthsm2\b/);
    expect(run).toMatch(/apt-get install[^&]*\bp11-kit\b/);
    const entry = JSON.parse(ins.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    const copy = ins.find((i) => i.op === 'COPY' && i.args.startsWith('entrypoint.sh'))!;
    expect(copy.args.split(/\s+/)[1]).toBe(entry[0]);
    // POSIX sh syntax check of the script itself.
    execFileSync('sh', ['-n', join(CONTAINERS, 'softhsm', 'entrypoint.sh')]);
  });

  test('bridge: builds on the SoftHSM image, takes the NLnet Labs repository as build arguments, exposes 5696', () => {
    const text = readFileSync(join(CONTAINERS, 'bridge', 'Dockerfile'), 'utf8');
    const ins = parseDockerfile(text);
    const args = argsDeclared(ins);
    expect(args.has('SOFTHSM_IMAGE')).toBe(true);
    // Declared without a value: the repository and key come from the build, not from this file.
    expect(args.has('NLNETLABS_APT_URL') && args.get('NLNETLABS_APT_URL') === undefined).toBe(true);
    expect(args.has('NLNETLABS_APT_KEY_URL') && args.get('NLNETLABS_APT_KEY_URL') === undefined).toBe(true);
    expect(
      ins
        .filter((i) => i.op === 'RUN')
        .map((i) => i.args)
        .join(' '),
    ).not.toMatch(/https?:\/\//);
    expect(ins.find((i) => i.op === 'EXPOSE')!.args).toBe('5696');
    expect(JSON.parse(ins.find((i) => i.op === 'ENTRYPOINT')!.args)).toEqual(['/usr/local/bin/hsm-entrypoint.sh']);
    expect(JSON.parse(ins.find((i) => i.op === 'CMD')!.args)[0]).toBe('cascade-hsm-bridge');
    // The driver passes every argument the Dockerfile requires.
    const driver = readFileSync(join(import.meta.dirname, '..', '..', 'drivers', 'bridge-container.ts'), 'utf8');
    for (const a of ['SOFTHSM_IMAGE', 'NLNETLABS_APT_URL', 'NLNETLABS_APT_KEY_URL']) expect(driver).toMatch(new RegExp(`\\b${a}:`));
  });

  test('bridge: config.toml is the v1 format with a PKCS#11 library path and a server address on 5696', () => {
    // Parsed by Python's tomllib, an independent TOML implementation.
    const conf = JSON.parse(
      execFileSync(
        'python3',
        ['-c', 'import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))', join(CONTAINERS, 'bridge', 'config.toml')],
        { encoding: 'utf8' },
      ),
    );
    expect(conf.version).toBe('v1');
    expect(conf.pkcs11['lib-path']).toBe('/usr/lib/softhsm/libsofthsm2.so');
    expect(conf.server.addr).toMatch(/:5696$/);
    expect(conf.daemon['log-target']).toEqual({ type: 'stderr' });
    expect(Object.keys(conf).sort()).toEqual(['daemon', 'pkcs11', 'server', 'version']);
  });

  test('nethsm: one line, FROM nitrokey/nethsm at a commit-hash tag, which the driver reads', () => {
    const lines = readFileSync(join(CONTAINERS, 'nethsm', 'Dockerfile'), 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^FROM nitrokey\/nethsm:[0-9a-f]{7,40}$/);
    expect(pinnedImage('nethsm')).toBe(lines[0]!.slice('FROM '.length));
  });
});
