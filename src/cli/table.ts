/**
 * Aligned plain-text tables for people (`-o json` is the format for scripts). No dependency: columns are padded
 * to their widest cell and separated by two spaces; the last column is never padded, so lines carry no
 * trailing blanks and long values (firewall expressions) do not widen every row.
 */

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
  /** Left out of the table when no row has a value for it (e.g. descriptions nobody wrote). */
  optional?: boolean;
}

/** Renders rows under upper-case headers; returns the text with a final newline. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    headers
      .map((_, i) => {
        const cell = cells[i] ?? '';
        return i === headers.length - 1 ? cell : cell.padEnd(widths[i] ?? 0);
      })
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

/** A table from objects and column accessors. */
export function renderObjects<T>(allColumns: readonly Column<T>[], items: readonly T[]): string {
  const columns = allColumns.filter((c) => !c.optional || items.some((item) => cellText(c.value(item)) !== '-'));
  return renderTable(
    columns.map((c) => c.header),
    items.map((item) => columns.map((c) => cellText(c.value(item)))),
  );
}

/** How one value reads in a cell: '-' for absent, compact JSON for objects, and never a line break. */
export function cellText(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  if (typeof value === 'string') return value.replace(/\s*\n\s*/g, ' ');
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}
