import type { Command } from './types.js';
import type { Availability } from '../driver.js';
import { parse } from './args.js';
import { loadDrivers } from '../registry.js';
import { loadReportWords } from '../report-words.js';
import { UsageError, describeError } from '../errors.js';
import { cleanText } from '../secrets.js';

export const driversCommand: Command = {
  name: 'drivers',
  summary: 'list every driver with its availability and the reason',
  usage: 'hsm-harness drivers [--json]',
  async run(argv) {
    const { values } = parse('drivers', argv, { json: { type: 'boolean', default: false } });
    const rows = [];
    await loadReportWords();
    for (const d of await loadDrivers()) {
      let availability: Availability;
      try {
        availability = await d.probe(process.env);
      } catch (err) {
        // Misconfiguration is shown here rather than fatal: this command exists to diagnose it.
        availability = { ok: false, reason: err instanceof UsageError ? `misconfigured: ${err.message}` : `probe failed: ${describeError(err)}` };
      }
      // A probe reason quotes the environment (a token label, a URI): masked, and control and bidi characters shown as text.
      rows.push({ id: d.id, title: d.title, kind: d.kind, available: availability.ok, reason: cleanText(availability.reason, true) });
    }
    if (values.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    } else {
      for (const r of rows)
        process.stdout.write(`${r.id.padEnd(18)} ${r.kind.padEnd(7)} ${(r.available ? 'available' : 'unavailable').padEnd(12)} ${r.reason}\n`);
    }
    return 0;
  },
};
