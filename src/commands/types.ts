export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the exit code. Throw UsageError for bad input (exit 2, one line). */
  run(argv: string[]): Promise<number>;
}
