import type { Command } from './types.js';
import { UsageError } from '../errors.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: '(bench: not built yet)',
  usage: 'hsm-harness bench ...',
  async run() {
    throw new UsageError('bench: not implemented yet');
  },
};
