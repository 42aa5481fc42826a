// Plain-text output helpers for the command line: aligned tables, byte sizes, help text.

/** Rows padded to aligned columns (two spaces between), trailing spaces trimmed. */
export function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n') + '\n';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 134217728 -> "128 MiB"; a size that is not a whole number of its unit gets two decimals: "3.99 GiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return String(n);
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${UNITS[u]}`;
}

export function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** Help lines for flags: `  --max-new-tokens <n>  description (default: 64)`. */
export function flagHelp(flags: readonly { name: string; placeholder?: string; description: string; default?: unknown }[]): string {
  if (flags.length === 0) return '';
  const rows = flags.map((f) => [
    `--${f.name}${f.placeholder ? ` <${f.placeholder}>` : ''}`,
    f.description + (f.default !== undefined ? ` (default: ${String(f.default)})` : ''),
  ]);
  return table(rows, '  ');
}
