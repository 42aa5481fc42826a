// The EAB path tree as indented text for a terminal: each node shows the text it generated after leaving its parent,
// with the entropy at its fork and how it ended.
import type { EabResult } from '../branch/eab.js';

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
