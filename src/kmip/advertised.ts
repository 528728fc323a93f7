/**
 * The one rule for KMIP operations a target does not advertise (docs/status-model.md): an operation its Query
 * does not list is `unsupported` when the target refuses it, never `fail`. One that works anyway is reported by
 * the suite as an `unadvertised` finding; one the target lists and then refuses stays a `fail`.
 */
import type { CaseHandle, SuiteCase } from '../suite.js';
import { E, operationName } from './tags.js';
import { KmipError, type KmipClient } from './client.js';

export class Advertised {
  /** `operations` from Query Operations; undefined until the target's Query was read (then nothing is excused). */
  constructor(public operations?: readonly number[]) {}

  /** Ask the target; a target whose Query fails advertises nothing we can rely on. */
  static async of(client: KmipClient): Promise<Advertised> {
    return new Advertised(
      await client.query(['Query Operations']).then(
        (q) => q.operations,
        () => undefined,
      ),
    );
  }

  /** True or false when Query was read, undefined when it was not. */
  lists(operation: string): boolean | undefined {
    return this.operations?.includes(E('Operation', operation));
  }

  /** A case body in which a refusal (KmipError) of an operation Query does not list makes the case `unsupported`. */
  guard(fn: (c: CaseHandle) => unknown): (c: CaseHandle) => Promise<void> {
    return async (c) => {
      try {
        await fn(c);
      } catch (err) {
        if (err instanceof KmipError) this.refused(c, operationName(err.operation), err.message);
        throw err;
      }
    };
  }

  /** The target refused `operation` (`answer` says how): `unsupported` when Query does not list it; returns otherwise. */
  refused(c: CaseHandle, operation: string, answer: string): void {
    if (this.lists(operation) === false) c.unsupported(`${operation} is not advertised by Query (${answer})`);
  }
}

/** A suite's table of cases, each run so that a refusal of an operation the target's Query does not list is `unsupported`. */
export function unlessAdvertised<S>(operations: (state: S) => readonly number[] | undefined, cases: readonly SuiteCase<S>[]): SuiteCase<S>[] {
  return cases.map((k) => ({ ...k, run: (c, s, ctx) => new Advertised(operations(s)).guard((h) => k.run(h, s, ctx))(c) }));
}
