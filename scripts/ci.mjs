#!/usr/bin/env node
// CI after the bootstrap in .ci/run (Debian packages and npm ci, which installs zx): a container engine on a
// private socket and the container drivers' images (as root only), the default run with that engine
// (`npm start`), then an emulated card beside the clone when there is one, then the README's test commands:
// `npm test` (lint, unit and integration tiers), `npm run test:slow` and, once the card is stopped,
// `npm run test:alone` (the performance claims that need an idle machine; together they are `npm run test:all`
// without running a tier twice). One summary line for all three closes the log. Whatever this started is
// stopped however it ends.
import { $, fs, path, echo } from 'zx';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
$.cwd = root;
const step = $({ stdio: 'inherit' });
// Captures stdout (what the command prints for us to use) and lets its messages through.
const capture = $({ stdio: ['inherit', 'pipe', 'inherit'] });
const stops = [];
const seconds = (t0) => Math.round((Date.now() - t0) / 1000);

async function stopAll() {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    void stopAll().then(() => process.exit(130));
  });
}

try {
  if (process.getuid?.() === 0) {
    // Images live in /var/lib/hsm-docker, kept between runs on the same machine: the debootstrap base and
    // the SoftHSM image are built once; from nothing it takes a few minutes.
    const t0 = Date.now();
    await $`apt-get install -y -q --no-install-recommends docker.io debootstrap`.quiet();
    const started = await capture`containers/engine.sh start`;
    stops.push(() => $`containers/engine.sh stop`);
    // DOCKER_HOST reaches the self-tests that need an engine; the ones that test the no-engine path force it absent.
    process.env.DOCKER_HOST = started.stdout.trim().replace(/^DOCKER_HOST=/, '');
    await step`npm run build --silent`;
    await step`node dist/src/cli.js images build`;
    echo(`ci: container engine at ${process.env.DOCKER_HOST} and images ready in ${seconds(t0)} s`);

    // The default run with the engine (softhsm-container beside softhsm and softhsm-p11kit in reports/).
    const t1 = Date.now();
    await step`npm start`;
    echo(`ci: npm start with the container engine took ${seconds(t1)} s`);
  }

  // Started only now, because the emulator busy-polls a core while it runs. Without it the card
  // self-tests (test/card/) skip with their reason.
  const card = path.join(path.dirname(root), 'shared', 'emulated-card');
  let stopCard = async () => undefined;
  if (await fs.pathExists(path.join(card, 'start'))) {
    const env = await capture`${path.join(card, 'start')}`;
    let running = true;
    stopCard = async () => {
      if (running) await $`${path.join(card, 'stop')}`.quiet();
      running = false;
    };
    stops.push(stopCard);
    process.env.HSM_TEST_CARD_ENV = env.stdout.trim();
  }

  // Each tier runs even when an earlier one failed: its failures are part of what the log must show. The
  // alone tier runs last, by itself, with the card's busy-polling emulator stopped (no test there uses it).
  const totals = { passed: 0, failed: 0, skipped: 0 };
  for (const args of [['test'], ['run', 'test:slow'], ['run', 'test:alone']]) {
    if (args[1] === 'test:alone') await stopCard().catch(() => undefined);
    const summary = path.join(root, '.vitest-reports', 'summary.json');
    await fs.remove(summary);
    const r = await step`npm ${args}`.nothrow();
    if (r.exitCode !== 0) process.exitCode ||= r.exitCode ?? 1;
    // Written by test/reporters/summary-line.ts; absent when the step stopped before its tests (setup, build, lint).
    const counts = (await fs.pathExists(summary)) ? await fs.readJson(summary) : { passed: 0, failed: 1, skipped: 0 };
    for (const k of Object.keys(totals)) totals[k] += counts[k];
  }
  echo(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
} catch (err) {
  process.exitCode = typeof err?.exitCode === 'number' && err.exitCode !== 0 ? err.exitCode : 1;
  if (err?.exitCode === undefined) echo(`ci: ${err?.message ?? err}`);
} finally {
  await stopAll();
}
