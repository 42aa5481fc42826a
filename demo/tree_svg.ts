// The branching tree as an SVG string: a pure function of the tree state (tree.ts), so the same code draws the live
// page and is unit-tested in Node. Each token is a cell coloured by how unsure the model was (entropy, 1 - probability,
// or low DeepConf confidence), each straight run between forks one edge labelled with its text, each fork a diamond,
// each path's end a marker saying how it ended.
import { layoutTree, type Measures, type TreeState, type TreeToken } from './tree.js';

// Blue (certain) -> amber -> red (uncertain): readable on white at every stop.
const STOPS: [number, [number, number, number]][] = [
  [0, [44, 95, 168]],
  [0.3, [95, 168, 211]],
  [0.5, [226, 178, 58]],
  [0.7, [232, 116, 59]],
  [1, [184, 33, 47]],
];

/** The colour of an uncertainty value in [0, 1] (clamped). */
export function colorScale(v: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 1));
  let i = 1;
  while (i < STOPS.length - 1 && x > STOPS[i][0]) i++;
  const [x0, c0] = STOPS[i - 1];
  const [x1, c1] = STOPS[i];
  const t = (x - x0) / (x1 - x0);
  const ch = (k: number) => Math.round(c0[k] + (c1[k] - c0[k]) * t).toString(16).padStart(2, '0');
  return `#${ch(0)}${ch(1)}${ch(2)}`;
}

export type ColorBy = 'entropy' | 'probability' | 'confidence';

/** Lowest and highest token confidence in the tree (confidence has no fixed scale: it grows with the vocabulary). */
export function confidenceRange(state: TreeState): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of state.paths.values())
    for (const t of p.tokens)
      if (t.confidence !== undefined) {
        lo = Math.min(lo, t.confidence);
        hi = Math.max(hi, t.confidence);
      }
  return lo <= hi ? [lo, hi] : null;
}

/**
 * The uncertainty in [0, 1] that colours a token or fork: its entropy, 1 - its probability, or where its confidence
 * sits between the tree's highest (0) and lowest (1). null when the mode did not report that measure.
 */
export function uncertainty(m: Measures, by: ColorBy, range: [number, number] | null = null): number | null {
  if (by === 'entropy') return m.entropy ?? null;
  if (by === 'probability') return m.logprob === undefined ? null : 1 - Math.exp(m.logprob);
  if (m.confidence === undefined || !range) return null;
  return range[1] > range[0] ? (range[1] - m.confidence) / (range[1] - range[0]) : 0;
}

const NO_MEASURE = '#c9ced4';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text on one line: newlines and tabs shown as visible marks. */
function oneLine(s: string): string {
  return s.replace(/\r?\n/g, '⏎').replace(/\t/g, '→');
}

export interface TreeSvgOptions {
  /** Text of a run of token ids. */
  decode: (ids: readonly number[]) => string;
  colorBy?: ColorBy;
  prompt?: string;
  /** Width the token grid aims for; cells stay between 10 and 28 px wide. */
  targetWidth?: number;
  /** An entropy threshold to mark on the legend (EAB's entropy_threshold). */
  threshold?: number;
  /** The confidence range of the colour scale; default: the tree's own (confidenceRange). */
  range?: [number, number] | null;
  /** Draw the colour scale and marker key under the tree (default true; the page draws it outside the scroller). */
  legend?: boolean;
}

const ROW_H = 26;
const TOP = 30;
const LEFT = 18;
const LEAF_LABEL = 54;
const LEGEND_W = 200;
const CHAR_W = 6.2; // average advance of the 11px sans-serif labels

function fit(text: string, px: number): string {
  const n = Math.floor(px / CHAR_W);
  if (text.length <= n) return text;
  // Fewer than three letters and an ellipsis say nothing; the edge's tooltip still has the text.
  return n < 4 ? '' : `${text.slice(0, n - 1)}…`;
}

/** The whole tree as a standalone SVG document string. */
export function renderTreeSvg(state: TreeState, opts: TreeSvgOptions): string {
  const by = opts.colorBy ?? 'entropy';
  const range = opts.range ?? confidenceRange(state);
  const color = (m: Measures | null) => {
    const u = m ? uncertainty(m, by, range) : null;
    return u === null ? NO_MEASURE : colorScale(u);
  };
  const L = layoutTree(state);
  const depth = Math.max(L.depth, 1);
  const cell = Math.max(10, Math.min(28, Math.floor((opts.targetWidth ?? 900) / depth)));
  const x = (pos: number) => LEFT + pos * cell;
  const y = (row: number) => TOP + 14 + row * ROW_H;
  const width = Math.max(x(depth) + LEAF_LABEL, 360);
  const rowsEnd = y(Math.max(L.rows.length, 1) - 1) + ROW_H / 2;
  const key = opts.legend ?? true ? legend(by, width, rowsEnd, opts.threshold, range) : null;
  const height = rowsEnd + (key ? key.height : 8);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="forklm-tree" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-label="branching tree: ${L.rows.length} paths" data-paths="${L.rows.length}">`,
    `<style>${STYLE}</style>`,
  );
  const prompt = opts.prompt ?? '';
  out.push(`<text class="t-prompt" x="${LEFT - 6}" y="16">${escapeXml(fit(`▶ ${oneLine(prompt)}`, width - LEFT))}</text>`);

  // Connectors first, so cells and nodes draw over them.
  if (L.rootRows.length > 1) {
    const ys = L.rootRows.map(y);
    out.push(`<path class="t-link" d="M${x(0)} ${Math.min(...ys)}V${Math.max(...ys)}"/>`);
  }
  for (const f of L.forks) out.push(`<path class="t-link" d="M${x(f.at)} ${y(f.row)}V${y(Math.max(...f.childRows))}"/>`);

  for (const s of L.segments) {
    const pruned = state.paths.get(s.path)?.end === 'pruned';
    const yy = y(s.row);
    const text = oneLine(opts.decode(s.tokens.map((t) => t.id)));
    out.push(`<g class="t-edge${pruned ? ' t-pruned' : ''}" data-path="${s.path}" data-from="${s.from}" data-to="${s.to}">`);
    out.push(`<title>#${s.path} [${s.from}, ${s.to}): ${escapeXml(text)}</title>`);
    s.tokens.forEach((t: TreeToken, i) => {
      out.push(`<rect class="t-tok" x="${x(s.from + i) + 0.5}" y="${yy - 3}" width="${cell - 1}" height="6" fill="${color(t)}"/>`);
    });
    // Clear of the fork diamond at the segment's start.
    const label = fit(text, (s.to - s.from) * cell - 7);
    if (label) out.push(`<text class="t-run" x="${x(s.from) + 6}" y="${yy - 6}">${escapeXml(label)}</text>`);
    out.push('</g>');
  }

  out.push(`<circle class="t-root" cx="${x(0)}" cy="${y(L.rootRows[0] ?? 0)}" r="5"><title>prompt</title></circle>`);
  for (const f of L.forks) {
    const fill = color(f.fork);
    const h = [
      f.fork?.entropy !== undefined ? ` H/lnV=${f.fork.entropy.toFixed(3)}` : '',
      f.fork?.confidence !== undefined ? ` confidence=${f.fork.confidence.toFixed(2)}` : '',
    ].join('');
    out.push(
      `<rect class="t-fork" x="${x(f.at) - 4}" y="${y(f.row) - 4}" width="8" height="8" transform="rotate(45 ${x(f.at)} ${y(f.row)})" ` +
        `fill="${fill}"><title>fork at token ${f.at} into ${f.childRows.length + 1}${h}</title></rect>`,
    );
  }
  for (const l of L.leaves) {
    const cx = x(l.at);
    const cy = y(l.row);
    const end = l.end ?? 'live';
    out.push(`<g class="t-leaf t-${end}" data-leaf="${l.path}" data-end="${end}" data-at="${l.at}">`);
    if (end === 'eos') out.push(`<circle cx="${cx + 4}" cy="${cy}" r="4"/>`);
    else if (end === 'length') out.push(`<rect x="${cx + 1}" y="${cy - 6}" width="3" height="12"/>`);
    else if (end === 'pruned') out.push(`<path d="M${cx} ${cy - 4}l8 8M${cx} ${cy + 4}l8 -8"/>`);
    else if (end === 'stopped') out.push(`<rect x="${cx}" y="${cy - 4}" width="8" height="8"/>`);
    else out.push(`<circle cx="${cx + 4}" cy="${cy}" r="3.5"/>`);
    out.push(`<text x="${cx + 12}" y="${cy + 4}">#${l.path}</text></g>`);
  }
  if (key) out.push(key.svg);
  out.push('</svg>');
  return out.join('');
}

// Inside the SVG, so a saved or standalone copy looks like the page.
const STYLE = [
  'text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#1f2328}',
  '.t-prompt{font-weight:600;fill:#57606a}',
  '.t-link{stroke:#8c959f;stroke-width:1.2;fill:none}',
  '.t-pruned{opacity:.4}',
  '.t-root{fill:#1f2328}',
  '.t-fork{stroke:#1f2328;stroke-width:1}',
  '.t-leaf text{fill:#57606a;font-size:10px}',
  '.t-eos circle,.t-length rect,.t-stopped rect{fill:#1f2328}',
  '.t-pruned path{stroke:#b8212f;stroke-width:2}',
  '.t-live circle{fill:#fff;stroke:#1f2328;stroke-width:1.5}',
  '.t-threshold{stroke:#1f2328;stroke-width:1.5}',
]
  // An inline <svg>'s <style> applies to the whole page: scope every rule to this tree.
  .map((rule) => {
    const [selectors, body] = rule.split('{');
    return `${selectors.split(',').map((sel) => `svg.forklm-tree ${sel}`).join(',')}{${body}`;
  })
  .join('');

/** The colour scale and marker key alone, as an SVG document string `width` pixels wide. */
export function renderLegendSvg(by: ColorBy, width: number, threshold?: number, range: [number, number] | null = null): string {
  const { svg, height } = legend(by, width, 0, threshold, range);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="forklm-tree" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<style>${STYLE}</style>${svg}</svg>`
  );
}

const TITLES: Record<ColorBy, string> = {
  entropy: 'entropy H / ln V',
  probability: 'token probability',
  confidence: 'confidence (DeepConf)',
};

/** Marker key entries: the marker centred at (x, y), its label, and the width the entry takes. */
const KEY: { label: string; w: number; marker: (x: number, y: number) => string }[] = [
  { label: 'fork', w: 48, marker: (x, y) => `<rect class="t-fork" x="${x - 4}" y="${y - 4}" width="8" height="8" fill="#fff" transform="rotate(45 ${x} ${y})"/>` },
  { label: 'end of text', w: 82, marker: (x, y) => `<g class="t-leaf t-eos"><circle cx="${x}" cy="${y}" r="4"/></g>` },
  { label: 'length', w: 58, marker: (x, y) => `<g class="t-leaf t-length"><rect x="${x - 1.5}" y="${y - 6}" width="3" height="12"/></g>` },
  { label: 'pruned', w: 62, marker: (x, y) => `<g class="t-leaf t-pruned"><path d="M${x - 4} ${y - 4}l8 8M${x - 4} ${y + 4}l8 -8"/></g>` },
  { label: 'stopped', w: 66, marker: (x, y) => `<g class="t-leaf t-stopped"><rect x="${x - 4}" y="${y - 4}" width="8" height="8"/></g>` },
  { label: 'running', w: 62, marker: (x, y) => `<g class="t-leaf t-live"><circle cx="${x}" cy="${y}" r="3.5"/></g>` },
];
const KEY_W = KEY.reduce((a, k) => a + k.w, 0);

/** The legend at `top`, `width` pixels wide: the key beside the scale when it fits, else wrapped under it. */
function legend(by: ColorBy, width: number, top: number, threshold?: number, range: [number, number] | null = null): { svg: string; height: number } {
  const w = LEGEND_W;
  const stops = STOPS.map(([o, c]) => `<stop offset="${o}" stop-color="rgb(${c.join(',')})"/>`).join('');
  const [lo, hi] =
    by === 'entropy' ? ['0 certain', '1 uncertain'] :
    by === 'probability' ? ['1', '0'] :
    range ? [`${range[1].toFixed(1)} sure`, `${range[0].toFixed(1)} unsure`] : ['high', 'low'];
  const parts = [
    `<g class="t-legend" transform="translate(${LEFT},${top + 14})">`,
    `<defs><linearGradient id="forklm-scale">${stops}</linearGradient></defs>`,
    `<text x="0" y="0">${TITLES[by]}</text>`,
    `<rect x="0" y="6" width="${w}" height="8" fill="url(#forklm-scale)"/>`,
    `<text x="0" y="28">${lo}</text><text x="${w}" y="28" text-anchor="end">${hi}</text>`,
  ];
  if (by === 'entropy' && threshold !== undefined && threshold > 0 && threshold < 1) {
    const tx = (threshold * w).toFixed(1);
    parts.push(`<path class="t-threshold" d="M${tx} 3V17"/><text x="${tx}" y="28" text-anchor="middle">${threshold}</text>`);
  }
  const avail = width - 2 * LEFT;
  const inline = avail >= w + 24 + KEY_W;
  const x0 = inline ? w + 24 : 0;
  let kx = x0;
  let ky = inline ? 12 : 46;
  for (const k of KEY) {
    if (kx > x0 && kx + k.w > avail) {
      kx = x0;
      ky += 20;
    }
    parts.push(`${k.marker(kx + 4, ky)}<text x="${kx + 12}" y="${ky + 4}">${k.label}</text>`);
    kx += k.w;
  }
  parts.push('</g>');
  return { svg: parts.join(''), height: 14 + Math.max(32, ky + 10) + 6 };
}
