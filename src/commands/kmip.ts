import type { Command } from './types.js';
import { UsageError } from '../errors.js';

export const kmipCommand: Command = {
  name: 'kmip',
  summary: '(kmip: not built yet)',
  usage: 'hsm-harness kmip ...',
  async run() {
    throw new UsageError('kmip: not implemented yet');
  },
};
