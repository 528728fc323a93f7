#!/usr/bin/env node
// The CI gate: fails unless every job it depends on succeeded. GitHub marks a job that depends on a failed
// job as "skipped", and a gate that only looked for "failure" would pass over it; so anything but
// "success" fails, except jobs named with --may-skip (ones that run only on some events), which may
// also be "skipped". Input: the `needs` context as JSON in $NEEDS (`NEEDS: ${{ toJSON(needs) }}`).
// Exit 0 when all is well, 1 when a job did not succeed, 2 on bad input.
import { parseArgs } from 'node:util';

function usage(msg) {
  process.stderr.write(`ci-gate: ${msg}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({ options: { 'may-skip': { type: 'string', multiple: true, default: [] } } }));
} catch (err) {
  usage(`${err.message}; usage: NEEDS='<toJSON(needs)>' node scripts/ci-gate.mjs [--may-skip JOB ...]`);
}

let needs;
try {
  needs = JSON.parse(process.env.NEEDS ?? '');
} catch {
  usage('NEEDS is not JSON; set it to ${{ toJSON(needs) }} in the workflow step');
}
if (!needs || typeof needs !== 'object' || Object.keys(needs).length === 0) {
  usage('NEEDS names no jobs; the gate job must list the jobs it gates in `needs:`');
}

const maySkip = new Set(values['may-skip']);
for (const name of maySkip) {
  if (!(name in needs)) usage(`--may-skip ${name}: no such job in needs (${Object.keys(needs).join(', ')})`);
}

let ok = true;
for (const [name, job] of Object.entries(needs)) {
  const result = job?.result ?? 'unknown';
  const fine = result === 'success' || (result === 'skipped' && maySkip.has(name));
  if (!fine) ok = false;
  process.stdout.write(`${fine ? 'ok  ' : 'FAIL'} ${name}: ${result}\n`);
}
process.exit(ok ? 0 : 1);
