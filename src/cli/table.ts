/** One column of {@linkcode formatTable}: a heading, and right alignment for numbers. */
export interface Column {
  /** The heading printed above the column. */
  title: string;
  /** Right-align the cells, as numbers read best. */
  right?: boolean;
}

/**
 * Lays out rows as a plain-text table: a heading line, then one line per
 * row, columns padded to their widest cell and separated by two spaces.
 *
 * @param columns Heading and alignment of each column.
 * @param rows Cells, one array per row, in column order.
 * @returns The lines, without trailing spaces.
 */
export function formatTable(columns: Column[], rows: string[][]): string[] {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    columns.map((c, i) => {
      const cell = cells[i] ?? "";
      return c.right ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
    }).join("  ").trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)];
}

/**
 * A duration as people read it: `850ms`, `12.3s`, `4m12s`, `2h03m`, `3d04h`.
 *
 * @param ms Milliseconds.
 * @returns The short text.
 */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const pad = (n: number) => String(Math.floor(n)).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${pad((s % 86400) / 3600)}h`;
}
