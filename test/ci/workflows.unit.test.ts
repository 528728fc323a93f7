/**
 * The GitHub workflows cannot run here, so this checks what can go wrong without running them: the YAML
 * parses, the jobs have the shape the project relies on (matrix, gate, permissions, report steps that run
 * after failures), and every command a step runs points at a script, npm script or built file that exists.
 */
import { describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { loadDrivers } from '../../src/registry.js';
import { commands } from '../../src/commands/index.js';
import { reportWriters } from '../../src/reports/write.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WORKFLOWS = join(ROOT, '.github', 'workflows');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  'working-directory'?: string;
}
interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  'runs-on': string | string[];
  'timeout-minutes'?: number;
  strategy?: { 'fail-fast'?: boolean; matrix?: Record<string, unknown[]> };
  concurrency?: unknown;
  container?: { image: string; volumes?: string[] };
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

function load(file: string): Workflow {
  const doc = parseDocument(readFileSync(join(WORKFLOWS, file), 'utf8'), { uniqueKeys: true });
  expect(doc.errors.map((e) => e.message)).toEqual([]);
  return doc.toJS() as Workflow;
}

const files = readdirSync(WORKFLOWS)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const workflows = new Map(files.map((f) => [f, load(f)]));
const ci = workflows.get('ci.yml')!;
const lab = workflows.get('lab.yml')!;
const publish = workflows.get('publish.yml')!;
const allSteps = [...workflows].flatMap(([file, wf]) =>
  Object.entries(wf.jobs).flatMap(([job, j]) => j.steps.map((s) => ({ where: `${file} ${job} "${s.name ?? s.uses ?? s.run}"`, job: j, step: s }))),
);
const needsOf = (j: Job) => [j.needs ?? []].flat();
const sourceText = () =>
  ['src', 'drivers', 'suites']
    .flatMap((d) =>
      readdirSync(join(ROOT, d), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.ts'))
        .map((f) => readFileSync(join(ROOT, d, f), 'utf8')),
    )
    .join('\n');

/**
 * What a shell line points at, checked against the tree: `node <file>` (a built dist/*.js counts when its
 * .ts source exists, since every job builds first), `npm test|start|run <script>`, `npx <bin>`.
 */
function brokenReferences(run: string): string[] {
  const broken: string[] = [];
  for (const m of run.matchAll(/\bnode\s+((?:\.\/)?[\w./-]+\.m?js)\b/g)) {
    const file = m[1];
    const source = file.startsWith('dist/') ? file.replace(/^dist\//, '').replace(/\.js$/, '.ts') : file;
    if (!existsSync(join(ROOT, source))) broken.push(`node ${file} (no ${source})`);
  }
  for (const m of run.matchAll(/\bnpm\s+(?:run(?:-script)?\s+([\w:-]+)|(test|start))\b/g)) {
    const script = m[1] ?? m[2];
    if (!pkg.scripts[script]) broken.push(`npm script "${script}" is not in package.json`);
  }
  for (const m of run.matchAll(/\bnpx\s+([\w@/.-]+)/g)) {
    if (!existsSync(join(ROOT, 'node_modules', '.bin', m[1]))) broken.push(`npx ${m[1]} (not installed)`);
  }
  return broken;
}

describe('workflow files', () => {
  test('ci.yml and lab.yml exist and parse', () => {
    expect(files).toEqual(expect.arrayContaining(['ci.yml', 'lab.yml']));
    for (const wf of workflows.values()) expect(Object.keys(wf.jobs).length).toBeGreaterThan(0);
  });

  test('every run: line points at scripts, npm scripts and built files that exist', () => {
    const runs = allSteps.filter((s) => s.step.run);
    expect(runs.length).toBeGreaterThan(5);
    const broken = runs.flatMap((s) => brokenReferences(s.step.run!).map((b) => `${s.where}: ${b}`));
    expect(broken).toEqual([]);
  });

  test('the reference checker catches a missing script, npm script and source', () => {
    // Guards the test above against a regex that silently matches nothing.
    expect(brokenReferences('node scripts/no-such.mjs && npm run no-such && node dist/src/nope.js && npm test')).toEqual([
      'node scripts/no-such.mjs (no scripts/no-such.mjs)',
      'node dist/src/nope.js (no src/nope.ts)',
      'npm script "no-such" is not in package.json',
    ]);
  });

  test('every run: script is valid bash', () => {
    for (const s of allSteps.filter((x) => x.step.run)) {
      const r = spawnSync('bash', ['-n'], { input: s.step.run, encoding: 'utf8' });
      expect(r.status, `${s.where}: ${r.stderr}`).toBe(0);
    }
  });

  test('the harness commands and driver ids the workflows use exist', async () => {
    const cliRuns = allSteps.map((s) => s.step.run ?? '').flatMap((r) => [...r.matchAll(/dist\/src\/cli\.js\s+([\w-]+)/g)].map((m) => m[1]));
    expect(cliRuns.length).toBeGreaterThan(0);
    for (const c of cliRuns) expect(commands.map((x) => x.name)).toContain(c);
    const devices = (Object.values(lab.jobs)[0]!.strategy?.matrix?.device ?? []) as { label: string; drivers: string }[];
    const ids = devices.flatMap((d) => d.drivers.split(/\s+/));
    expect(ids.length).toBeGreaterThan(0);
    const drivers = await loadDrivers();
    for (const id of ids) expect(drivers.map((d) => d.id)).toContain(id);
  });

  test('every action is pinned to a version tag or a commit SHA', () => {
    const uses = allSteps.filter((s) => s.step.uses).map((s) => s.step.uses!);
    expect(uses.length).toBeGreaterThan(5);
    for (const u of uses) expect(u).toMatch(/^[\w.-]+\/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/);
  });

  test('secrets and dispatch inputs reach the shell only through env, never spliced into a script', () => {
    for (const s of allSteps.filter((x) => x.step.run)) {
      expect(s.step.run, s.where).not.toMatch(/\$\{\{\s*(secrets|inputs|github\.event)\./);
    }
  });

  test('every job has a timeout, and the workflow defaults to read-only contents', () => {
    for (const [file, wf] of workflows) {
      expect(wf.permissions, file).toEqual({ contents: 'read' });
      for (const [name, j] of Object.entries(wf.jobs)) {
        expect(j['timeout-minutes'], `${file} ${name}`).toBeGreaterThan(0);
        expect(j['timeout-minutes'], `${file} ${name}`).toBeLessThanOrEqual(360);
      }
    }
  });

  test('report steps run after failures, and publishing steps have the permissions they need', () => {
    const reportSteps = allSteps.filter((s) => /upload-artifact|action-junit-report|test-reporter/.test(s.step.uses ?? ''));
    expect(reportSteps.length).toBeGreaterThanOrEqual(4);
    for (const s of reportSteps) expect(s.step.if, s.where).toMatch(/^\$\{\{\s*!cancelled\(\)\s*\}\}$/);
    for (const s of reportSteps.filter((x) => !/upload-artifact/.test(x.step.uses!))) {
      expect(s.job.permissions?.checks, s.where).toBe('write');
    }
    const uploads = reportSteps.filter((s) => /upload-artifact/.test(s.step.uses!));
    for (const s of uploads) expect(String(s.step.with?.path), s.where).toMatch(/(^|\n)reports\/?(\n|$)/);
  });
});

describe('ci.yml', () => {
  const testJob = ci.jobs.test;

  test('runs on pushes to main and on pull requests', () => {
    expect(ci.on).toHaveProperty('pull_request');
    expect((ci.on.push as { branches: string[] }).branches).toContain('main');
  });

  test('matrix over Node 20 and 22, fail-fast off', () => {
    expect(testJob.strategy?.['fail-fast']).toBe(false);
    expect(testJob.strategy?.matrix?.node?.map(String).sort()).toEqual(['20', '22']);
    // The matrix value must actually select the Node version.
    expect(testJob.container?.image).toMatch(/^node:\$\{\{\s*matrix\.node\s*\}\}-bookworm$/);
  });

  test('installs the Debian packages, starts a private container engine, runs npm test, the slow tier and npm start, stops the engine', () => {
    const runs = testJob.steps.map((s) => s.run ?? '');
    const at = (re: RegExp) => runs.findIndex((r) => re.test(r));
    expect(at(/node scripts\/setup\.mjs/)).toBeGreaterThanOrEqual(0);
    expect(at(/^npm test$/)).toBeGreaterThan(at(/node scripts\/setup\.mjs/));
    // npm test runs the unit and integration tiers; the slow tier completes test:all, even after a failure.
    const slow = at(/^npm run test:slow$/);
    expect(slow).toBeGreaterThan(at(/^npm test$/));
    expect(testJob.steps[slow]!.if).toMatch(/!cancelled\(\)/);
    // The alone tier after it, in its own step: nothing else of the job runs beside it.
    const alone = at(/^npm run test:alone$/);
    expect(alone).toBeGreaterThan(slow);
    expect(testJob.steps[alone]!.if).toMatch(/!cancelled\(\)/);
    expect(at(/^npm start$/)).toBeGreaterThan(at(/^npm test$/));
    // The engine runs in the job (as in .ci/run), before the tests, and its DOCKER_HOST reaches later steps.
    const engine = at(/containers\/engine\.sh start >> "\$GITHUB_ENV"/);
    expect(engine).toBeGreaterThan(at(/node scripts\/setup\.mjs/));
    expect(engine).toBeLessThan(at(/^npm test$/));
    expect(existsSync(join(ROOT, 'containers', 'engine.sh'))).toBe(true);
    const stop = testJob.steps.findIndex((s) => /containers\/engine\.sh stop/.test(s.run ?? ''));
    expect(stop).toBeGreaterThan(at(/^npm start$/));
    expect(testJob.steps[stop]!.if).toMatch(/always\(\)/);
    // No host socket: nothing in CI depends on a docker.sock being mounted.
    expect((testJob.container?.volumes ?? []).filter((v) => /docker\.sock/.test(v))).toEqual([]);
  });

  test('uploads reports per Node version and publishes both JUnit files', () => {
    const upload = testJob.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.with?.name).toMatch(/\$\{\{\s*matrix\.node\s*\}\}/);
    // .vitest-reports is a hidden directory; upload-artifact drops those unless told otherwise.
    expect(upload.with?.['include-hidden-files']).toBe(true);
    const junitPaths = testJob.steps.filter((s) => s.uses?.startsWith('mikepenz/action-junit-report@')).map((s) => s.with?.report_paths);
    // The self-tests' glob takes junit.xml (npm test), junit-slow.xml (test:slow) and junit-alone.xml (test:alone).
    expect(junitPaths.sort()).toEqual(['.vitest-reports/junit*.xml', 'reports/junit.xml']);
  });

  test('feeds both benchmark files to github-action-benchmark, on pushes to main only', async () => {
    const bench = Object.values(ci.jobs).find((j) => j.steps.some((s) => s.uses?.startsWith('benchmark-action/github-action-benchmark@')))!;
    expect(bench.if).toMatch(/github\.event_name == 'push'/);
    expect(bench.if).toMatch(/github\.ref == 'refs\/heads\/main'/);
    expect(needsOf(bench)).toContain('test');
    const steps = bench.steps.filter((s) => s.uses?.startsWith('benchmark-action/'));
    const byTool = Object.fromEntries(steps.map((s) => [s.with?.tool, s.with]));
    expect(String(byTool.customBiggerIsBetter?.['output-file-path'])).toMatch(/reports\/bench-action\.json$/);
    expect(String(byTool.customSmallerIsBetter?.['output-file-path'])).toMatch(/reports\/bench-action-latency\.json$/);
    // The files are ones `run` writes (the workflow reads them from the uploaded reports/).
    const written = (await reportWriters()).map((w) => w.file);
    for (const s of steps) expect(written).toContain(String(s.with?.['output-file-path']).split('/').pop());
    // One chart per direction: the names must differ.
    expect(new Set(steps.map((s) => s.with?.name)).size).toBe(steps.length);
    for (const s of steps) {
      if (s.with?.['auto-push'] === true) {
        expect(bench.permissions).toMatchObject({ contents: 'write', deployments: 'write' });
      }
    }
    // The artifact it reads is one the matrix uploads.
    const download = bench.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
    const legs = (testJob.strategy!.matrix!.node as unknown[]).map((n) => `reports-node${n}`);
    expect(legs).toContain(download.with?.name);
  });

  test('the gate needs every other job and passes their results to scripts/ci-gate.mjs', () => {
    const [gateName, gate] = Object.entries(ci.jobs).find(([, j]) => j.steps.some((s) => /ci-gate\.mjs/.test(s.run ?? '')))!;
    expect(gate.if).toMatch(/always\(\)/);
    const others = Object.keys(ci.jobs).filter((n) => n !== gateName);
    expect(needsOf(gate).sort()).toEqual(others.sort());
    const step = gate.steps.find((s) => /ci-gate\.mjs/.test(s.run ?? ''))!;
    expect(step.env?.NEEDS).toMatch(/^\$\{\{\s*toJSON\(needs\)\s*\}\}$/);
    // A job may be excused for being skipped only if it has a condition that skips it.
    for (const m of step.run!.matchAll(/--may-skip\s+([\w-]+)/g)) expect(ci.jobs[m[1]]?.if, m[1]).toBeTruthy();
    expect(step.run).not.toMatch(/--may-skip\s+test\b/);
  });
});

describe('lab.yml', () => {
  const [job] = Object.values(lab.jobs);
  const devices = (job.strategy?.matrix?.device ?? []) as { label: string; drivers: string }[];

  test('started by hand or weekly, one job per attached device on the self-hosted runner with its label', async () => {
    const drivers = await loadDrivers();
    expect(Object.keys(lab.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
    expect(job.strategy?.['fail-fast']).toBe(false);
    expect(devices.length).toBeGreaterThanOrEqual(2);
    expect(new Set(devices.map((d) => d.label)).size).toBe(devices.length);
    expect(job['runs-on']).toEqual(expect.arrayContaining(['self-hosted', 'linux']));
    // The device's label selects the runner: without it every leg could land on any lab machine.
    expect((job['runs-on'] as string[]).some((l) => /^\$\{\{\s*matrix\.device\.label\s*\}\}$/.test(l))).toBe(true);
    // Each device's drivers reach physical tokens (a leg of software tokens only would not need the lab).
    for (const d of devices)
      expect(
        d.drivers.split(/\s+/).some((id) => drivers.find((x) => x.id === id)?.traits.physical),
        d.label,
      ).toBe(true);
    // The runner label is recorded in results.json, so the merged site says where a run was made.
    expect(job.env?.HSM_RUNNER_LABELS).toMatch(/\$\{\{\s*matrix\.device\.label\s*\}\}/);
    expect(sourceText()).toContain('HSM_RUNNER_LABELS');
  });

  test('token env comes from secrets, and every variable it sets is one the harness reads', () => {
    const env = job.env ?? {};
    for (const name of ['SCHSM_PIN', 'SCHSM_READER', 'SCHSM_DKEK_SHARES', 'SCHSM_DKEK_PASSWORD', 'YUBIHSM_PIN', 'YUBIHSM_PKCS11_CONF']) {
      expect(env[name], name).toBe(`\${{ secrets.${name} }}`);
    }
    // Destructive or PIN-burning switches are never set by the workflow.
    expect(env).not.toHaveProperty('HSM_ALLOW_WRONG_PIN');
    expect(env).not.toHaveProperty('SCHSM_ALLOW_INITIALIZE');
    const unread = Object.keys(env).filter((n) => /^(SCHSM|YUBIHSM)_/.test(n) && !sourceText().includes(n));
    expect(unread, 'set by lab.yml but read nowhere in src/, drivers/, suites/').toEqual([]);
  });

  test('builds before running the CLI and uploads the reports under a name per device', () => {
    const runs = job.steps.map((s) => s.run ?? '');
    const build = runs.findIndex((r) => /npm run build/.test(r));
    const cli = runs.findIndex((r) => /node dist\/src\/cli\.js run/.test(r));
    expect(build).toBeGreaterThanOrEqual(0);
    expect(cli).toBeGreaterThan(build);
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(String(upload.with?.name)).toMatch(/^lab-reports-\$\{\{\s*matrix\.device\.label\s*\}\}-/);
  });
});

describe('publish.yml', () => {
  const [job] = Object.values(publish.jobs);
  const runs = job.steps.map((s) => s.run ?? '').join('\n');

  test('runs after ci and lab (and by hand), never for pull requests, one at a time', () => {
    const wr = publish.on.workflow_run as { workflows: string[]; types: string[] };
    expect(wr.workflows.sort()).toEqual([ci.name, lab.name].sort());
    expect(wr.types).toEqual(['completed']);
    expect(publish.on).toHaveProperty('workflow_dispatch');
    expect(job.if).toMatch(/github\.event\.workflow_run\.event != 'pull_request'/);
    expect((publish as unknown as { concurrency: { 'cancel-in-progress': boolean } }).concurrency['cancel-in-progress']).toBe(false);
    expect(job.permissions).toEqual({ contents: 'write', actions: 'read' });
  });

  test('downloads exactly the artifacts ci and lab upload', () => {
    const downloads = job.steps.filter((s) => s.uses?.startsWith('actions/download-artifact@'));
    expect(downloads).toHaveLength(2);
    for (const d of downloads) expect(String(d.with?.['run-id'])).toMatch(/github\.event\.workflow_run\.id/);
    const ciUpload = ci.jobs.test.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    const legs = (ci.jobs.test.strategy!.matrix!.node as unknown[]).map((n) => String(ciUpload.with?.name).replace(/\$\{\{\s*matrix\.node\s*\}\}/, String(n)));
    expect(legs).toContain(downloads.find((d) => /'ci'/.test(d.if ?? ''))!.with?.name);
    const labUpload = Object.values(lab.jobs)[0]!.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    const pattern = String(downloads.find((d) => /'lab'/.test(d.if ?? ''))!.with?.pattern);
    expect(pattern.endsWith('*')).toBe(true);
    expect(String(labUpload.with?.name).startsWith(pattern.slice(0, -1))).toBe(true);
  });

  test('merges the published runs, the contributed ones and the new reports, then pushes to gh-pages without touching dev/bench', () => {
    expect(runs).toMatch(/node dist\/src\/cli\.js merge .*--out site/);
    expect(runs).toMatch(/pages\/fleet\/runs/);
    expect(runs).toMatch(/fleet\/contrib/);
    expect(runs).toMatch(/-not -path '\*\/selftest-\*'/);
    expect(runs).toMatch(/git push origin gh-pages/);
    expect(runs).not.toMatch(/dev\/bench/);
    // The benchmark job writes its history to the same branch and folder this job must keep.
    const bench = ci.jobs.benchmark.steps.filter((s) => s.uses?.startsWith('benchmark-action/'));
    for (const s of bench) {
      expect(s.with?.['gh-pages-branch']).toBe('gh-pages');
      expect(s.with?.['benchmark-data-dir-path']).toBe('dev/bench');
    }
  });
});

describe('test tiers (vitest projects in vitest.config.ts)', () => {
  const projectsOf = (script: string) => [...(pkg.scripts[script] ?? '').matchAll(/--project (\w+)/g)].map((m) => m[1]);

  test('npm test lints and runs unit and integration; test:all runs every tier; CI adds the slow tier, then the alone tier', () => {
    expect(pkg.scripts.test).toMatch(/npm run lint/);
    expect(projectsOf('test')).toEqual(['unit', 'integration']);
    expect(pkg.scripts['test:all']).toMatch(/npm run lint/);
    expect(projectsOf('test:all')).toEqual([]); // no --project: all of them
    expect(projectsOf('test:unit')).toEqual(['unit']);
    expect(projectsOf('test:slow')).toEqual(['slow']);
    expect(projectsOf('test:alone')).toEqual(['alone']);
    // Three vitest runs in one CI job must not overwrite each other's JUnit file.
    expect(pkg.scripts['test:slow']).toMatch(/--outputFile\.junit=\.vitest-reports\/junit-slow\.xml/);
    expect(pkg.scripts['test:alone']).toMatch(/--outputFile\.junit=\.vitest-reports\/junit-alone\.xml/);
    const ciScript = readFileSync(join(ROOT, 'scripts', 'ci.mjs'), 'utf8');
    expect(ciScript).toMatch(/\[\['test'\], \['run', 'test:slow'\], \['run', 'test:alone'\]\]/);
  });
});

describe('scripts/ci-gate.mjs', () => {
  const gate = (needs: unknown, ...args: string[]) =>
    spawnSync('node', [join(ROOT, 'scripts', 'ci-gate.mjs'), ...args], {
      env: { ...process.env, NEEDS: typeof needs === 'string' ? needs : JSON.stringify(needs) },
      encoding: 'utf8',
    });
  const job = (result: string) => ({ result, outputs: {} });

  test('passes when every job succeeded, or an excused job was skipped', () => {
    expect(gate({ test: job('success'), benchmark: job('success') }, '--may-skip', 'benchmark').status).toBe(0);
    expect(gate({ test: job('success'), benchmark: job('skipped') }, '--may-skip', 'benchmark').status).toBe(0);
  });

  test('fails on a failed, cancelled or unexcused skipped job, and names it', () => {
    for (const bad of ['failure', 'cancelled', 'skipped']) {
      const r = gate({ test: job(bad), benchmark: job('success') }, '--may-skip', 'benchmark');
      expect(r.status, bad).toBe(1);
      expect(r.stdout).toContain(`FAIL test: ${bad}`);
    }
  });

  test('bad input is a usage error (exit 2), not a pass', () => {
    expect(gate('not json').status).toBe(2);
    expect(gate({}).status).toBe(2);
    const r = gate({ test: job('success') }, '--may-skip', 'nope');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--may-skip nope: no such job/);
  });
});
