/** The CLI's commands. Each lives in its own file. */
import type { Command } from './types.js';
import { runCommand } from './run.js';
import { driversCommand } from './drivers.js';
import { discoverCommand } from './discover.js';
import { kmipCommand } from './kmip.js';
import { dkekCommand } from './dkek.js';
import { benchCommand } from './bench.js';
import { cleanupCommand } from './cleanup.js';
import { mergeCommand } from './merge.js';
import { diffCommand } from './diff.js';

export const commands: Command[] = [runCommand, driversCommand, discoverCommand, kmipCommand, dkekCommand, benchCommand, cleanupCommand, mergeCommand, diffCommand];
