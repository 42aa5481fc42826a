// The EAB path tree as indented text for a terminal: each node shows the text it generated after leaving its parent,
// with the entropy at its fork and how it ended.
import type { EabResult } from '../branch/eab.js';
import type { PeaksResult } from '../branch/peaks.js';

export function renderEabTree(result: EabResult, decode?: (ids: number[]) => string): string {
  const byId = new Map(result.tree.map((n) => [n.path, n]));
  const sampleText = new Map(result.samples.map((s) => [s.path, s]));
  const lines: string[] = [];
  const clip = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);
  const walk = (id: number, prefix: string, last: boolean, depth: number) => {
    const n = byId.get(id)!;
    const text = decode ? decode(n.tokens) : `${n.tokens.length} tokens`;
    const end = n.finish ? ` [${n.finish}]` : '';
    const sample = sampleText.get(id);
    const logp = sample ? ` logp ${sample.log_probability.toFixed(2)}` : '';
    lines.push(`${prefix}${depth === 0 ? '' : last ? '└─ ' : '├─ '}#${id} @${n.fork_position}: ${clip(JSON.stringify(text))}${end}${logp}`);
    const kids = n.children;
    kids.forEach((c, i) => walk(c, prefix + (depth === 0 ? '' : last ? '   ' : '│  '), i === kids.length - 1, depth + 1));
  };
  for (const root of result.tree.filter((n) => n.parent === null)) walk(root.path, '', true, 0);
  return lines.join('\n');
}

/** A peaks run for a terminal: each trace under its parent, with its branch point, confidence and text. */
export function renderPeaks(result: PeaksResult): string {
  const lines: string[] = [];
  const byId = new Map(result.traces.map((t) => [t.trace_id, t]));
  const clip = (s: string) => (s.length > 70 ? `...${s.slice(-67)}` : s);
  const walk = (id: string, indent: string) => {
    const t = byId.get(id)!;
    const where = t.parent_id === null ? 'root' : `from ${t.parent_id} @${t.branch_point}`;
    lines.push(`${indent}${t.trace_id} (${where}, ${t.new_tokens} new, conf ${t.mean_confidence.toFixed(2)}, ${t.stop_reason}): ${JSON.stringify(clip(t.text))}`);
    for (const c of t.children) walk(c, indent + '  ');
  };
  for (const t of result.traces.filter((x) => x.parent_id === null)) walk(t.trace_id, '');
  const s = result.stats;
  lines.push(
    `\n${s.traces} traces (${s.branch_traces} branches, depth ${s.max_depth_reached}); rows computed ${s.tokens_computed} vs ` +
      `${s.tokens_reencode} re-encoding (${(100 * s.savings_vs_reencode).toFixed(1)}% fewer); ${s.ms.toFixed(0)} ms, ${s.tokens_per_s.toFixed(1)} tokens/s`,
  );
  return lines.join('\n');
}
