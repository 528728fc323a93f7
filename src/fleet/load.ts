/**
 * Reading results.json files for merge and diff: each file is checked against docs/results.schema.json
 * (with Ajv) before anything uses it, so a truncated upload, a file from another tool or an older format is
 * a clear usage error naming the file, never a half-right site or diff.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, type Dirent, type Stats } from 'node:fs';
import { INPUT_LIMITS, jsonDepth, readInputFile } from '../input.js';
import { dirname, join, relative, resolve } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { RESULTS_SCHEMA_VERSION, type RunResults } from '../results.js';
import { UsageError } from '../errors.js';
import { projectRoot, toolVersion } from '../paths.js';
import type { BenchRecord } from '../bench-format.js';
import { importFromTree } from '../registry.js';

export const SCHEMA_PATH = join('docs', 'results.schema.json');

let validator: ValidateFunction | undefined;

/** The compiled schema (strict mode: a typo in the schema itself is an error, not a silently ignored keyword). */
export function resultsValidator(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormatsModule.default(ajv);
  validator = ajv.compile(JSON.parse(readFileSync(join(projectRoot(), SCHEMA_PATH), 'utf8')));
  return validator;
}

/** Schema errors as short lines ("/drivers/0/status must be equal to one of the allowed values"); empty when valid. */
export function schemaErrors(value: unknown): string[] {
  const validate = resultsValidator();
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}

export interface LoadedRun {
  /** The results.json file, as given or found. */
  file: string;
  results: RunResults;
  /** Stable id of this run: date plus a digest of the file, so the same upload merged twice is one run. */
  id: string;
  /** Benchmark records: bench.json beside results.json when there is one, else the run's own bench sections. */
  bench: BenchRecord[];
}

/** Read and validate one results.json. Bad input is a UsageError naming the file and what to do. */
export async function loadRun(file: string): Promise<LoadedRun> {
  const text = (await readInputFile(file, INPUT_LIMITS.results, 'results file')).toString('utf8');
  // Refused before anything walks it: schema validation and the renderers recurse into the value.
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new UsageError(
      `${file} nests arrays or objects more than ${MAX_JSON_DEPTH} deep, which no results.json does; give a results.json written by hsm-harness run`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${file} is not JSON; give a results.json written by hsm-harness run`);
  }
  const version = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== RESULTS_SCHEMA_VERSION) {
    const what = typeof version === 'number' ? `results schema version ${version}` : 'no schemaVersion';
    throw new UsageError(
      `${file} has ${what}; hsm-harness ${toolVersion()} reads version ${RESULTS_SCHEMA_VERSION} only ` +
        `(docs/results-format.md): run that token again with this version of the harness`,
    );
  }
  const errors = schemaErrors(value);
  if (errors.length) {
    throw new UsageError(
      `${file} does not match docs/results.schema.json version ${RESULTS_SCHEMA_VERSION}: ${errors.slice(0, 3).join('; ')}` +
        `${errors.length > 3 ? ` (and ${errors.length - 3} more)` : ''}`,
    );
  }
  const results = value as RunResults;
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const day = results.startedAt.slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return { file, results, id: `${day}-${digest}`, bench: await benchBeside(file, results) };
}

async function benchBeside(file: string, results: RunResults): Promise<BenchRecord[]> {
  const path = join(dirname(file), 'bench.json');
  if (existsSync(path)) {
    try {
      const text = (await readInputFile(path, INPUT_LIMITS.results, 'bench file')).toString('utf8');
      if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw new Error('too deep');
      const b = JSON.parse(text) as { startedAt?: string; records?: BenchRecord[] };
      // Only the bench.json of this same run: a stale one from an earlier run would date figures wrongly.
      if (b.startedAt === results.startedAt && Array.isArray(b.records)) return b.records;
    } catch {
      /* fall back to the run's own sections */
    }
  }
  // No bench.json of this run beside it: derive the records from the run's own sections, as bench.json does.
  const { benchRecords } = await importFromTree<{ benchRecords(r: RunResults): BenchRecord[] }>('bench/report');
  return benchRecords(results);
}

/**
 * The results.json files a command-line argument stands for: the file itself, or every results.json under
 * a directory (downloaded CI artifacts nest them), in a stable order.
 */
export function resultsFiles(arg: string): string[] {
  const path = resolve(arg);
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${arg} does not exist; give results.json files or directories that hold them`);
  }
  if (st.isFile()) return [path];
  if (!st.isDirectory()) throw new UsageError(`${arg} is not a regular file or a directory; give results.json files or directories that hold them`);
  const found = findResultsFiles(path, arg).sort();
  if (found.length === 0) throw new UsageError(`${arg} holds no results.json; give the reports directory of a run (hsm-harness run --out DIR)`);
  return found;
}

/** Nesting allowed in a results.json: far more than any run writes, far less than a stack overflow. */
export const MAX_JSON_DEPTH = 64;
/** How far a directory argument is searched: downloaded CI artifacts nest a few levels, never thousands of entries. */
const WALK_LIMITS = { depth: 8, entries: 20_000 };

/** Every results.json under dir, without following symlinks, within WALK_LIMITS; unreadable directories are skipped. */
function findResultsFiles(dir: string, arg: string): string[] {
  const found: string[] = [];
  let seen = 0;
  const walk = (d: string, depth: number) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++seen > WALK_LIMITS.entries) {
        throw new UsageError(`${arg} holds more than ${WALK_LIMITS.entries} entries; give the reports directory of a run or the results.json files themselves`);
      }
      if (e.isDirectory() && e.name !== 'node_modules' && depth < WALK_LIMITS.depth) walk(join(d, e.name), depth + 1);
      else if (e.name === 'results.json' && !e.isDirectory()) found.push(join(d, e.name));
    }
  };
  walk(dir, 0);
  return found;
}

/** For messages: a path relative to the working directory when that is shorter. */
export function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && r.length < p.length ? r : p;
}
