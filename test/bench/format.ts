/**
 * github-action-benchmark's custom formats (customBiggerIsBetter / customSmallerIsBetter, v1.22): the file is
 * a JSON array of { name: string, value: number, unit: string, range?: string, extra?: string }
 * (benchmark-action/github-action-benchmark src/extract.ts). Returns the problems found.
 */
export function actionFormatProblems(data: unknown): string[] {
  if (!Array.isArray(data)) return ['not a JSON array'];
  const problems: string[] = [];
  data.forEach((e: Record<string, unknown>, i) => {
    if (typeof e !== 'object' || e === null) {
      problems.push(`entry ${i} is not an object`);
      return;
    }
    if (typeof e.name !== 'string' || e.name === '') problems.push(`entry ${i}: name must be a non-empty string`);
    if (typeof e.value !== 'number' || !Number.isFinite(e.value)) problems.push(`entry ${i}: value must be a finite number`);
    if (typeof e.unit !== 'string') problems.push(`entry ${i}: unit must be a string`);
    for (const k of ['range', 'extra']) if (k in e && typeof e[k] !== 'string') problems.push(`entry ${i}: ${k} must be a string`);
    for (const k of Object.keys(e)) if (!['name', 'value', 'unit', 'range', 'extra'].includes(k)) problems.push(`entry ${i}: unknown key ${k}`);
  });
  const names = data.map((e: { name?: unknown }) => e?.name);
  const dupes = names.filter((n, i) => names.indexOf(n) !== i);
  if (dupes.length) problems.push(`duplicate series names: ${[...new Set(dupes)].join(', ')}`);
  return problems;
}
