#!/usr/bin/env node
/**
 * hsm-harness command line. Exit codes: 0 everything expected passed, 1 failures, 2 bad usage or bad
 * input (one line on stderr saying what was wrong and what to do; no report is written).
 */
import { commands } from './commands/index.js';
import { UsageError, describeError } from './errors.js';
import { cleanText } from './secrets.js';
import { toolVersion } from './paths.js';

async function help(): Promise<string> {
  const all = await Promise.all(commands.map((c) => c.load()));
  const w = Math.max(...all.map((c) => c.name.length));
  return [
    `hsm-harness ${toolVersion()}: what does this HSM really do, is it safe, how fast is it, and will DNSSEC signers work on it`,
    '',
    'usage: hsm-harness <command> [options]   (hsm-harness <command> --help for details)',
    '',
    ...all.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    process.stderr.write(await help());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await help());
    return 0;
  }
  if (name === '--version') {
    process.stdout.write(`${toolVersion()}\n`);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) throw new UsageError(`unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}`);
  const cmd = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${cmd.usage}\n${cmd.summary}\n`);
    return 0;
  }
  return cmd.run(rest);
}

// `hsm-harness … | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  else throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`hsm-harness: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`hsm-harness: internal error: ${describeError(err)}\n`);
      if (process.env.HSM_HARNESS_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${cleanText(err.stack)}\n`);
      process.exitCode = 1;
    }
  },
);
