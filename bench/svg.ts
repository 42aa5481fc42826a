// Plain SVG charts as strings, no dependency: grouped bar charts and line charts with axes, ticks, labels, a title,
// a legend and optional reference lines, linear or log scales. A chart is drawn into a frame (a rectangle of the
// document), so one document can hold several panels.

export interface Frame {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface AxisSpec {
  label: string;
  /** Log scale (base 10 ticks unless `ticks` is given). Values <= 0 cannot be drawn on it and are skipped. */
  log?: boolean;
  min?: number;
  max?: number;
  /** Explicit tick values (e.g. the batch sizes on a log2 axis). */
  ticks?: number[];
}

export interface RefLine {
  value: number;
  label: string;
  color?: string;
  /** Where the label sits along the line (default 'end', the right edge). */
  anchor?: 'start' | 'end';
}

export interface LineSeries {
  name: string;
  points: { x: number; y: number }[];
  color?: string;
  dashed?: boolean;
  /** Draw markers at the points (default true). */
  markers?: boolean;
}

export interface BarGroup {
  name: string;
  /** One value per category; null: no bar (not measured). */
  values: (number | null)[];
  color?: string;
}

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const MARGIN = { left: 70, right: 16, top: 34, bottom: 64 };

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short number text for ticks and value labels: 3 significant digits, k/M suffixes above 10^4. */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100) return `${Math.round(v)}`;
  return `${+v.toPrecision(3)}`;
}

interface Scale {
  (v: number): number;
  ticks: number[];
}

/** Tick steps of 1, 2 or 5 times a power of ten, about `count` of them over [min, max]. */
function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}

/** Maps data values to pixels from `lo` (at the axis minimum) to `hi`. */
function scale(axis: AxisSpec, values: number[], lo: number, hi: number, zeroBased: boolean): Scale {
  const finite = values.filter((v) => Number.isFinite(v) && (!axis.log || v > 0));
  if (axis.log) {
    let min = axis.min ?? Math.min(...finite, ...(axis.ticks ?? []));
    let max = axis.max ?? Math.max(...finite, ...(axis.ticks ?? []));
    if (!(min > 0)) min = 1;
    if (!(max > min)) max = min * 10;
    // A bar chart starts its log axis a decade lower when the smallest bar would otherwise be a sliver at the bottom.
    const lowest = Math.log10(min);
    const lower = zeroBased && axis.min === undefined && lowest - Math.floor(lowest) < 0.3 ? 1 : 0;
    const a = axis.ticks ? lowest : Math.floor(lowest) - lower;
    const b = axis.ticks ? Math.log10(max) : Math.ceil(Math.log10(max));
    const f = ((v: number) => lo + ((Math.log10(v) - a) / (b - a || 1)) * (hi - lo)) as Scale;
    f.ticks = axis.ticks ?? Array.from({ length: b - a + 1 }, (_, i) => 10 ** (a + i));
    return f;
  }
  let min = axis.min ?? (zeroBased ? Math.min(0, ...finite) : Math.min(...finite));
  let max = axis.max ?? Math.max(...finite);
  if (!Number.isFinite(min)) min = 0;
  if (!(max > min)) max = min + 1;
  const ticks = axis.ticks ?? niceTicks(min, max);
  if (axis.max === undefined) max = Math.max(max, ticks[ticks.length - 1]);
  if (axis.min === undefined) min = Math.min(min, ticks[0]);
  const f = ((v: number) => lo + ((v - min) / (max - min)) * (hi - lo)) as Scale;
  f.ticks = ticks.filter((t) => t >= min - 1e-12 && t <= max + 1e-12);
  return f;
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} ${attrs}>${esc(s)}</text>`;
}

/** Multi-line text (lines split on \n), centred on x. */
function lines(x: number, y: number, s: string, size: number): string {
  const parts = s.split('\n');
  const spans = parts.map((p, i) => `<tspan x="${x.toFixed(1)}" dy="${i === 0 ? 0 : size + 2}">${esc(p)}</tspan>`).join('');
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} font-size="${size}" text-anchor="middle">${spans}</text>`;
}

interface Plot {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function plotArea(f: Frame, legendRows: number): Plot {
  return {
    left: f.x + MARGIN.left,
    right: f.x + f.width - MARGIN.right,
    top: f.y + MARGIN.top + legendRows * 16,
    bottom: f.y + f.height - MARGIN.bottom,
  };
}

function yAxis(p: Plot, sy: Scale, label: string): string {
  const out: string[] = [];
  for (const t of sy.ticks) {
    const y = sy(t);
    out.push(`<line x1="${p.left}" x2="${p.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(text(p.left - 6, y + 4, fmt(t), 'font-size="11" text-anchor="end"'));
  }
  const cy = (p.top + p.bottom) / 2;
  out.push(text(p.left - 52, cy, label, `font-size="12" text-anchor="middle" transform="rotate(-90 ${(p.left - 52).toFixed(1)} ${cy.toFixed(1)})"`));
  out.push(`<line x1="${p.left}" x2="${p.left}" y1="${p.top}" y2="${p.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${p.left}" x2="${p.right}" y1="${p.bottom}" y2="${p.bottom}" stroke="#333"/>`);
  return out.join('\n');
}

function refLines(p: Plot, sy: Scale, refs: RefLine[] = []): string {
  return refs
    .map((r) => {
      const y = sy(r.value);
      if (!Number.isFinite(y) || y < p.top - 0.5 || y > p.bottom + 0.5) return '';
      const c = r.color ?? '#555';
      return (
        `<line x1="${p.left}" x2="${p.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${c}" stroke-dasharray="6 4"/>` +
        (r.anchor === 'start'
          ? text(p.left + 4, y - 4, r.label, `font-size="11" text-anchor="start" fill="${c}"`)
          : text(p.right - 4, y - 4, r.label, `font-size="11" text-anchor="end" fill="${c}"`))
      );
    })
    .join('\n');
}

/** Legend entries laid out in rows across the frame; returns the markup and the rows used. */
function legend(f: Frame, items: { name: string; color: string; dashed?: boolean }[], swatch = 6): { svg: string; rows: number } {
  const out: string[] = [];
  let x = f.x + MARGIN.left;
  let row = 0;
  for (const it of items) {
    const w = 34 + it.name.length * 6.2;
    if (x + w > f.x + f.width - MARGIN.right && x > f.x + MARGIN.left) {
      row++;
      x = f.x + MARGIN.left;
    }
    const y = f.y + 32 + row * 16;
    out.push(
      `<line x1="${x}" x2="${x + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="${it.dashed ? 2 : swatch}"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    out.push(text(x + 24, y, it.name, 'font-size="11"'));
    x += w;
  }
  return { svg: out.join('\n'), rows: items.length ? row + 1 : 0 };
}

function title(f: Frame, s: string): string {
  return text(f.x + f.width / 2, f.y + 16, s, 'font-size="14" font-weight="bold" text-anchor="middle"');
}

export interface BarChartSpec {
  title: string;
  categories: string[];
  groups: BarGroup[];
  y: AxisSpec;
  xLabel?: string;
  refs?: RefLine[];
  /** Print each bar's value above it (default true). */
  valueLabels?: boolean;
}

export function barChart(f: Frame, spec: BarChartSpec): string {
  const groups = spec.groups.map((g, i) => ({ ...g, color: g.color ?? PALETTE[i % PALETTE.length] }));
  const lg = legend(f, groups);
  const p = plotArea(f, lg.rows);
  const values = groups.flatMap((g) => g.values.filter((v): v is number => v !== null));
  const sy = scale(spec.y, [...values, ...(spec.refs ?? []).map((r) => r.value)], p.bottom, p.top, true);
  const out = [title(f, spec.title), lg.svg, yAxis(p, sy, spec.y.label)];
  const n = spec.categories.length;
  const slot = (p.right - p.left) / Math.max(1, n);
  const barW = Math.min(40, (slot * 0.8) / Math.max(1, groups.length));
  const base = spec.y.log ? p.bottom : sy(Math.max(0, sy.ticks[0] ?? 0));
  spec.categories.forEach((cat, ci) => {
    const cx = p.left + slot * (ci + 0.5);
    const x0 = cx - (barW * groups.length) / 2;
    groups.forEach((g, gi) => {
      const v = g.values[ci];
      if (v === null || v === undefined || !Number.isFinite(v) || (spec.y.log && v <= 0)) return;
      const y = Math.max(p.top, Math.min(p.bottom, sy(v)));
      const x = x0 + gi * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${Math.min(y, base).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${Math.abs(base - y).toFixed(1)}" fill="${g.color}"><title>${esc(`${g.name}, ${cat.replace(/\n/g, ' ')}: ${fmt(v)}`)}</title></rect>`,
      );
      if (spec.valueLabels !== false) out.push(text(x + barW / 2, y - 3, fmt(v), 'font-size="9" text-anchor="middle"'));
    });
    out.push(lines(cx, p.bottom + 14, cat, 10));
  });
  out.push(refLines(p, sy, spec.refs));
  if (spec.xLabel) out.push(text((p.left + p.right) / 2, f.y + f.height - 6, spec.xLabel, 'font-size="12" text-anchor="middle"'));
  return `<g>\n${out.join('\n')}\n</g>`;
}

export interface LineChartSpec {
  title: string;
  series: LineSeries[];
  x: AxisSpec;
  y: AxisSpec;
  refs?: RefLine[];
}

export function lineChart(f: Frame, spec: LineChartSpec): string {
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length] }));
  const lg = legend(f, series, 3);
  const p = plotArea(f, lg.rows);
  const pts = series.flatMap((s) => s.points);
  const sx = scale(spec.x, pts.map((q) => q.x), p.left, p.right, false);
  const sy = scale(spec.y, [...pts.map((q) => q.y), ...(spec.refs ?? []).map((r) => r.value)], p.bottom, p.top, !spec.y.log);
  const out = [title(f, spec.title), lg.svg, yAxis(p, sy, spec.y.label)];
  for (const t of sx.ticks) {
    const x = sx(t);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${p.bottom}" y2="${p.bottom + 4}" stroke="#333"/>`);
    out.push(text(x, p.bottom + 16, fmt(t), 'font-size="11" text-anchor="middle"'));
  }
  out.push(text((p.left + p.right) / 2, p.bottom + 36, spec.x.label, 'font-size="12" text-anchor="middle"'));
  out.push(refLines(p, sy, spec.refs));
  for (const s of series) {
    const ok = s.points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y) && (!spec.y.log || q.y > 0) && (!spec.x.log || q.x > 0));
    if (ok.length === 0) continue;
    const d = ok.map((q, i) => `${i ? 'L' : 'M'}${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (s.markers !== false)
      for (const q of ok)
        out.push(
          `<circle cx="${sx(q.x).toFixed(1)}" cy="${sy(q.y).toFixed(1)}" r="3" fill="${s.color}"><title>${esc(`${s.name}: x=${fmt(q.x)}, y=${fmt(q.y)}`)}</title></circle>`,
        );
  }
  return `<g>\n${out.join('\n')}\n</g>`;
}

/** A whole SVG document around panels; `caption` goes under them (machine, adapter, date). */
export function svgDocument(width: number, height: number, panels: string[], caption = ''): string {
  const cap = caption ? text(8, height - 6, caption, 'font-size="10" fill="#555"') : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n` +
    `<rect width="${width}" height="${height}" fill="white"/>\n${panels.join('\n')}\n${cap}\n</svg>\n`
  );
}
