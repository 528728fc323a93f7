#!/usr/bin/env node
// Installs what hsm-harness needs and is missing: Debian packages (as root with apt-get; otherwise it
// prints the exact apt-get line and exits 2) and the npm dependencies (npm ci). Uses only Node built-ins,
// because it runs before node_modules exists. Idempotent: a second run does nothing and takes a second.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Debian package -> why the harness needs it.
const DEBIAN_PACKAGES = {
  softhsm2: 'SoftHSM 2.6.1 token and softhsm2-util',
  opensc: 'pkcs11-tool and sc-hsm-tool (SmartCard-HSM, DKEK)',
  'opensc-pkcs11': "OpenSC's PKCS#11 module",
  'p11-kit': 'p11-kit server (out-of-process driver)',
  'p11-kit-modules': 'p11-kit-client.so',
  'libhsm-bin': 'ods-hsmspeed (benchmark reference)',
  ldnsutils: 'ldns-verify-zone (independent DNSSEC verification)',
  'python3-pykmip': 'PyKMIP server (KMIP target)',
  openssl: 'certificates for the KMIP targets, independent checks',
  gcc: 'builds the crash-injection test module',
  'libc6-dev': 'headers for the crash-injection test module',
  chromium: 'renders the HTML report in tests',
};

function missingPackages() {
  const names = Object.keys(DEBIAN_PACKAGES);
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...names], { encoding: 'utf8' });
  const installed = new Set(
    (r.stdout || '')
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      .map((l) => l.split(' ')[0]),
  );
  return names.filter((n) => !installed.has(n));
}

function fail(msg) {
  process.stderr.write(`hsm-harness setup: ${msg}\n`);
  process.exit(2);
}

const quiet = process.argv.includes('--quiet');
const log = (m) => {
  if (!quiet) process.stderr.write(`setup: ${m}\n`);
};

if (!existsSync('/usr/bin/dpkg-query')) {
  fail('this set-up expects Debian (dpkg/apt-get); install the packages listed in README.md by hand');
}
const missing = missingPackages();
if (missing.length > 0) {
  const line = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid && process.getuid() !== 0) {
    fail(`missing Debian packages: ${missing.join(', ')}; run as root: ${line}`);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', ['-q', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
  let r = run(['install', '-y', '--no-install-recommends', ...missing]);
  if (r.status !== 0) {
    run(['update']);
    r = run(['install', '-y', '--no-install-recommends', ...missing]);
  }
  if (r.status !== 0) fail(`apt-get install failed; run by hand: ${line}`);
  const still = missingPackages();
  if (still.length) fail(`still missing after apt-get: ${still.join(', ')}; run: ${line}`);
}

// npm dependencies: npm ci when node_modules is missing or older than the lock file.
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.package-lock.json');
const pkcs11Addon = join(root, 'node_modules', 'pkcs11js', 'build', 'Release', 'pkcs11.node');
const stale = !existsSync(stamp) || !existsSync(pkcs11Addon) || statSync(stamp).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  log('installing npm dependencies (npm ci)');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) fail('npm ci failed; see the output above');
}
