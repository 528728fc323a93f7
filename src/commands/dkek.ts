import type { Command } from './types.js';
import { UsageError } from '../errors.js';

export const dkekCommand: Command = {
  name: 'dkek',
  summary: '(dkek: not built yet)',
  usage: 'hsm-harness dkek ...',
  async run() {
    throw new UsageError('dkek: not implemented yet');
  },
};
