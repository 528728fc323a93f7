/**
 * Suites as tables of named cases (src/suite.ts SuiteCase): which cases a run selects (`run --case PATTERN`),
 * and running one suite's table: setup, each case unless a case it needs did not pass, teardown.
 */
import type { Suite, SuiteCase, SuiteContext } from '../suite.js';
import { UsageError } from '../errors.js';

/** A --case pattern: '*' is any characters (also '/'), '?' one; it must match all of 'suite/case' or of the case name. */
function globRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** 'suite/case' for a need: a need whose first part is a suite's name names that suite's case, else one of `suite`. */
export function needId(suites: readonly Suite[], suite: string, need: string): string {
  const head = need.split('/')[0];
  return suites.some((s) => s.name === head) ? need : `${suite}/${need}`;
}

/** What `run --case` runs: the matching cases and, transitively, the cases they need. */
export class CaseSelection {
  /** The table cases that run, as 'suite/case'. */
  readonly ids = new Set<string>();

  constructor(
    private readonly suites: readonly Suite[],
    patterns: readonly string[],
  ) {
    for (const pattern of patterns) {
      const re = globRegExp(pattern);
      let matched = false;
      for (const s of suites) {
        for (const c of s.cases) {
          if (re.test(`${s.name}/${c.name}`) || re.test(c.name)) {
            this.add(s, c);
            matched = true;
          }
        }
      }
      if (!matched)
        throw new UsageError(`--case "${pattern}" matches no case; a pattern is 'suite/case' or a case name, * and ? allowed (e.g. --case 'signing/*')`);
    }
  }

  private add(suite: Suite, c: SuiteCase): void {
    const id = `${suite.name}/${c.name}`;
    if (this.ids.has(id)) return;
    this.ids.add(id);
    for (const need of [...(c.needs ?? []), ...(c.reads ?? [])]) {
      const nid = needId(this.suites, suite.name, need);
      const [owner, ...rest] = nid.split('/');
      const s = this.suites.find((x) => x.name === owner);
      const dep = s?.cases.find((x) => x.name === rest.join('/'));
      if (s && dep) this.add(s, dep);
    }
  }

  /** Whether the suite has anything to run. */
  runs(suite: Suite): boolean {
    return suite.cases.some((c) => this.ids.has(`${suite.name}/${c.name}`));
  }

  /** Whether this case runs (the runner's checks always do). */
  has(suite: Suite, name: string): boolean {
    return !!suite.always || this.ids.has(`${suite.name}/${name}`);
  }
}

/**
 * One table suite: setup, then every selected case in order. A case whose needs did not all pass is `skip`
 * "blocked by suite/case (status)" without running. Throwing from setup aborts the suite (the caller records it).
 */
export async function runCaseTable(ctx: SuiteContext, suite: Suite, suites: readonly Suite[], selection?: CaseSelection): Promise<void> {
  const state = suite.setup ? await suite.setup(ctx) : undefined;
  try {
    for (const c of suite.cases) {
      if (selection && !selection.has(suite, c.name)) continue;
      if (c.applies && !c.applies(ctx, state)) continue;
      const blocker = (c.needs ?? []).map((n) => needId(suites, suite.name, n)).find((id) => statusOf(ctx, id) !== 'pass');
      if (!blocker) await c.before?.(state, ctx);
      const status = await ctx.case(
        c.name,
        (h) => {
          if (blocker) h.skip(`blocked by ${blocker} (${statusOf(ctx, blocker) ?? 'not run'})`);
          return c.run(h, state, ctx);
        },
        { timeoutMs: typeof c.timeoutMs === 'function' ? c.timeoutMs(ctx, state) : c.timeoutMs, withoutSession: suite.always },
      );
      c.after?.(status, state, ctx);
    }
  } finally {
    await suite.teardown?.(ctx, state);
  }
}

/** The status a case of this run got ('suite/case'), after the expectations file; undefined when it did not run. */
function statusOf(ctx: SuiteContext, id: string): string | undefined {
  const slash = id.indexOf('/');
  return ctx.report.cases.findLast((r) => r.suite === id.slice(0, slash) && r.case === id.slice(slash + 1))?.status;
}
