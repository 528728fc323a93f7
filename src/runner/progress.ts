/**
 * Progress output on stderr: one live line per driver on a TTY, plain lines otherwise (CI logs).
 * Status, driver, suite and case names are printed as they are; reasons and log lines are free text and
 * are cleaned (secrets masked, control characters escaped) before they reach the terminal.
 */
import type { CaseRecord, DriverReport } from '../results.js';
import { cleanText } from '../secrets.js';

export interface Progress {
  unavailable(driver: string, reason: string): void;
  driverStart(driver: string): void;
  caseStart(driver: string, suite: string, name: string): void;
  caseEnd(record: CaseRecord): void;
  driverEnd(report: DriverReport): void;
  log(driver: string, line: string): void;
}

export function makeProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  const tty = stream.isTTY === true;
  const write = (s: string) => {
    if (!quiet) stream.write(s);
  };
  const free = (s: string) => cleanText(s, true);
  const counts = new Map<string, Record<string, number>>();
  const tally = (d: string) => {
    let c = counts.get(d);
    if (!c) counts.set(d, (c = { pass: 0, fail: 0, skip: 0, unsupported: 0, crash: 0, timeout: 0 }));
    return c;
  };
  const summary = (d: string) => {
    const c = tally(d);
    return (
      Object.entries(c)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ') || 'no cases'
    );
  };
  const pad = (s: string) => s.padEnd(16);
  return {
    unavailable(driver, reason) {
      write(`${pad(driver)} unavailable: ${free(reason)}\n`);
    },
    driverStart(driver) {
      tally(driver);
      if (!tty) write(`${pad(driver)} starting\n`);
    },
    caseStart(driver, suite, name) {
      if (tty) write(`\r\x1b[2K${pad(driver)} ${summary(driver)} … ${suite}/${name}`);
    },
    caseEnd(r) {
      tally(r.driver)[r.status]!++;
      if (tty) write(`\r\x1b[2K${pad(r.driver)} ${summary(r.driver)}`);
      else write(`${pad(r.driver)} ${r.status.padEnd(11)} ${r.suite}/${r.case}${r.status !== 'pass' && r.reason ? ` — ${free(r.reason)}` : ''}\n`);
    },
    driverEnd(report) {
      write(`${tty ? '\r\x1b[2K' : ''}${pad(report.id)} ${report.status === 'ran' ? 'done' : report.status}: ${summary(report.id)}\n`);
    },
    // On a TTY a log line is the live line until the next case: during a driver's start (an image build that
    // takes a minute) it says what is happening.
    log(driver, line) {
      write(tty ? `\r\x1b[2K${pad(driver)} ${free(line)}` : `${pad(driver)} ${free(line)}\n`);
    },
  };
}
