#!/usr/bin/env node
// Installs what hsm-harness needs and is missing: Debian packages (as root with apt-get; otherwise it
// prints the exact apt-get line and exits 2) and the npm dependencies (npm ci). Uses only Node built-ins,
// because it runs before node_modules exists. Idempotent: a second run does nothing and takes a second.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
  // The signers suite runs these real signers (docs/signers.md).
  knot: 'Knot DNS (keymgr) for the signers suite',
  'knot-dnssecutils': 'kzonesign for the signers suite',
  'libengine-pkcs11-openssl': 'OpenSSL engine_pkcs11 for ldns-signzone -E pkcs11',
  'pdns-server': 'PowerDNS (pdnsutil hsm) for the signers suite',
  'pdns-backend-sqlite3': "PowerDNS's database for the signers suite",
  opendnssec: 'OpenDNSSEC enforcer and signer for the signers suite',
};

// From bookworm-backports: BIND 9.18 in bookworm has no PKCS#11 at all; 9.20 reaches tokens through pkcs11-provider.
const BACKPORTS_PACKAGES = {
  'bind9-utils': 'dnssec-keygen / dnssec-signzone 9.20 for the signers suite',
  'pkcs11-provider': 'the OpenSSL 3 provider BIND 9.20 signs through',
};
const BACKPORTS = 'bookworm-backports';
// Installed only as tools: their daemons must not run on their own (the suite starts its own, on loopback).
const SIGNER_SERVICES = ['knot', 'pdns', 'opendnssec-enforcer', 'opendnssec-signer', 'named'];

function missingPackages(names = Object.keys(DEBIAN_PACKAGES)) {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${Version} ${db:Status-Status}\n', ...names], { encoding: 'utf8' });
  const installed = new Set(
    (r.stdout || '')
      .split('\n')
      .filter((l) => l.endsWith(' installed'))
      // A backports package counts only in its backports version (bind9-utils 9.18 from bookworm is not enough).
      .filter((l) => !(l.split(' ')[0] in BACKPORTS_PACKAGES) || l.includes('~bpo'))
      .map((l) => l.split(' ')[0]),
  );
  return names.filter((n) => !installed.has(n));
}

/** The Debian way to add backports: a deb822 source on the same mirror and keyring as the existing bookworm source. */
function ensureBackportsSource() {
  const dir = '/etc/apt/sources.list.d';
  const files = readdirSync(dir).filter((f) => f.endsWith('.sources') || f.endsWith('.list'));
  const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
  if (existsSync('/etc/apt/sources.list')) texts.push(readFileSync('/etc/apt/sources.list', 'utf8'));
  if (texts.some((t) => /^\s*(Suites:.*\s|deb\s+\S+\s+)bookworm-backports\b/m.test(t) || /^Suites:.*\bbookworm-backports\b/m.test(t))) return false;
  const debian = texts.find((t) => /^Suites:.*\bbookworm\b/m.test(t) && /^URIs:/m.test(t));
  const uri = debian ? /^URIs:\s*(\S+)/m.exec(debian)[1] : 'http://deb.debian.org/debian';
  const keyring = (debian && /^Signed-By:\s*(\S+)/m.exec(debian)?.[1]) || '/usr/share/keyrings/debian-archive-keyring.gpg';
  writeFileSync(join(dir, `${BACKPORTS}.sources`), `Types: deb\nURIs: ${uri}\nSuites: ${BACKPORTS}\nComponents: main\nSigned-By: ${keyring}\n`);
  log(`added ${join(dir, `${BACKPORTS}.sources`)} (${uri})`);
  return true;
}

/** Stop and disable the daemons of signer packages this run installed (postinst starts them where no policy-rc.d forbids it). */
function quietServices() {
  const systemd = existsSync('/run/systemd/system');
  for (const svc of SIGNER_SERVICES) {
    if (systemd) spawnSync('systemctl', ['disable', '--now', svc], { stdio: 'ignore' });
    else if (existsSync(`/etc/init.d/${svc}`)) {
      spawnSync('invoke-rc.d', [svc, 'stop'], { stdio: 'ignore' });
      spawnSync('update-rc.d', [svc, 'disable'], { stdio: 'ignore' });
    }
  }
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
  quietServices();
}

const missingBackports = missingPackages(Object.keys(BACKPORTS_PACKAGES));
if (missingBackports.length > 0) {
  const line = `apt-get install -y --no-install-recommends -t ${BACKPORTS} ${missingBackports.join(' ')} (after adding ${BACKPORTS} to the APT sources)`;
  if (process.getuid && process.getuid() !== 0) fail(`missing Debian packages from ${BACKPORTS}: ${missingBackports.join(', ')}; run as root: ${line}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => spawnSync('apt-get', ['-q', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (ensureBackportsSource() && run(['update']).status !== 0) fail(`apt-get update failed after adding ${BACKPORTS}`);
  log(`installing from ${BACKPORTS}: ${missingBackports.join(' ')}`);
  let r = run(['install', '-y', '--no-install-recommends', '-t', BACKPORTS, ...missingBackports]);
  if (r.status !== 0) {
    run(['update']);
    r = run(['install', '-y', '--no-install-recommends', '-t', BACKPORTS, ...missingBackports]);
  }
  if (r.status !== 0 || missingPackages(Object.keys(BACKPORTS_PACKAGES)).length) fail(`installing from ${BACKPORTS} failed; run by hand: ${line}`);
  quietServices();
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
