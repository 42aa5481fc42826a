// The samples list and the stats panel as HTML strings: pure functions of plain data, so they are unit-tested in Node
// like the tree.
import { escapeXml } from './tree_svg.js';

export interface SampleView {
  path: number;
  text: string;
  /** log p(sample) under the model. */
  logProb: number;
  tokens: number;
  finish: string;
}

export interface StatsView {
  promptTokens: number;
  /** Rows the GPU computed for this run (prompt prefill + every path's decode rows). */
  tokenSteps: number;
  /** What independent samples of the same lengths would compute. */
  naiveTokenSteps: number;
  pagesInUse: number;
  pagesPeak: number;
  /** Pages independent caches would need (null while unknown). */
  naivePages: number | null;
  tokensPerS: number;
  generated: number;
  forks: number;
  pruned: number;
  samples: number;
  live: number;
  steps: number;
  ms: number;
  done: boolean;
}

function fmtProb(logp: number): string {
  if (Number.isNaN(logp)) return '–';
  if (!Number.isFinite(logp)) return '0';
  const p = Math.exp(logp);
  if (p >= 0.001) return p.toPrecision(3);
  // exp underflows long before log p does: write the power of ten from log p itself.
  const e10 = logp / Math.LN10;
  const exp = Math.floor(e10);
  return `${(10 ** (e10 - exp)).toFixed(2)}e${exp}`;
}

/** Each sample's share of the samples' total probability (softmax of the log-probabilities). */
export function shares(samples: readonly SampleView[]): number[] {
  if (samples.length === 0) return [];
  // An unknown log p (NaN) gets no share rather than poisoning the sum.
  const m = Math.max(...samples.map((s) => s.logProb).filter((x) => !Number.isNaN(x)));
  if (!Number.isFinite(m)) return samples.map(() => 1 / samples.length);
  const w = samples.map((s) => (Number.isNaN(s.logProb) ? 0 : Math.exp(s.logProb - m)));
  const z = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / z);
}

/** Samples, most probable first, with p, log p, their share of the total and how they ended. */
export function samplesHtml(samples: readonly SampleView[], prompt: string): string {
  if (samples.length === 0) return '<p class="empty">No finished samples yet.</p>';
  const share = shares(samples);
  const order = samples.map((_, i) => i).sort((a, b) => samples[b].logProb - samples[a].logProb || samples[a].path - samples[b].path);
  const items = order.map((i) => {
    const s = samples[i];
    const pct = (share[i] * 100).toFixed(share[i] >= 0.1 ? 0 : 1);
    return (
      `<li class="sample" data-path="${s.path}" data-logp="${s.logProb}" data-tokens="${s.tokens}">` +
      `<div class="meta"><b>#${s.path}</b><span>p = ${fmtProb(s.logProb)}</span><span>log p = ${Number.isNaN(s.logProb) ? '–' : s.logProb.toFixed(2)}</span>` +
      `<span class="tag ${escapeXml(s.finish)}">${escapeXml(s.finish)}</span><span>${s.tokens} tok</span></div>` +
      `<div class="share" title="share of the samples' total probability"><i style="width:${(share[i] * 100).toFixed(1)}%"></i><em>${pct}%</em></div>` +
      `<p class="text"><span class="prompt">${escapeXml(prompt)}</span>${escapeXml(s.text)}</p></li>`
    );
  });
  return `<ol class="samples">${items.join('')}</ol>`;
}

function n(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Token steps against naive, pages, speed and the run's counts. */
export function statsHtml(s: StatsView): string {
  const ratio = s.naiveTokenSteps > 0 ? s.tokenSteps / s.naiveTokenSteps : 0;
  const scale = Math.max(s.tokenSteps, s.naiveTokenSteps, 1);
  const bar = (label: string, v: number, cls: string, key: string) =>
    `<div class="bar ${cls}"><span>${label}</span><i style="width:${((v / scale) * 100).toFixed(1)}%"></i>` +
    `<b data-stat="${key}" data-value="${v}">${n(v)}</b></div>`;
  const cell = (label: string, key: string, v: number, shown: string) =>
    `<div><dt>${label}</dt><dd data-stat="${key}" data-value="${v}">${shown}</dd></div>`;
  return (
    `<div class="steps">${bar('forklm', s.tokenSteps, 'ours', 'token_steps')}${bar('naive', s.naiveTokenSteps, 'naive', 'naive_token_steps')}` +
    `<p class="ratio">token steps: <b data-stat="ratio" data-value="${ratio}">${s.naiveTokenSteps > 0 ? `${(ratio * 100).toFixed(0)}% of naive` : '–'}</b>` +
    `${s.done ? '' : ' <em>(so far)</em>'}</p></div>` +
    '<dl class="cells">' +
    cell('pages in use', 'pages_in_use', s.pagesInUse, n(s.pagesInUse)) +
    cell('pages peak', 'pages_peak', s.pagesPeak, `${n(s.pagesPeak)}${s.naivePages !== null ? ` <small>/ ${n(s.naivePages)} naive</small>` : ''}`) +
    cell('tokens/s', 'tokens_per_s', s.tokensPerS, s.tokensPerS.toFixed(s.tokensPerS < 100 ? 1 : 0)) +
    cell('sample tokens', 'generated', s.generated, n(s.generated)) +
    cell('prompt tokens', 'prompt_tokens', s.promptTokens, n(s.promptTokens)) +
    cell('samples', 'samples', s.samples, n(s.samples)) +
    cell('live paths', 'live', s.live, n(s.live)) +
    cell('forks', 'forks', s.forks, n(s.forks)) +
    cell('pruned', 'pruned', s.pruned, n(s.pruned)) +
    cell('steps', 'steps', s.steps, n(s.steps)) +
    cell('time', 'ms', s.ms, `${(s.ms / 1000).toFixed(2)} s`) +
    '</dl>'
  );
}
