// The demo's pure pieces (demo/tree.ts, tree_svg.ts, panels.ts): the tree folded from EAB events, its layout and SVG, the samples and stats panels, and the
// Hugging Face URL helper. Random event streams are simulated in EAB's own order (member tokens, then the fork event
// naming the children, then finish/prune), so the fold meets children before the fork that creates them.
import { describe, expect, it } from 'vitest';
import type { EabEvent } from '../../src/branch/eab.js';
import { hfHubId } from '../../demo/model_source.js';
import { samplesHtml, shares, statsHtml, type StatsView } from '../../demo/panels.js';
import { applyEvent, emptyTree, fullTokens, layoutTree, treeFromEvents, type EndReason, type TreeEvent } from '../../demo/tree.js';
import { colorScale, confidenceRange, renderLegendSvg, renderTreeSvg, uncertainty } from '../../demo/tree_svg.js';
import { mulberry32, testSeed } from '../ref/random.js';

interface Sim {
  events: EabEvent[];
  /** Every path's whole generated sequence. */
  truth: Map<number, number[]>;
  ends: Map<number, EndReason>;
}

/** An EAB-shaped run: each step every live path takes a token, some fork into 2-3, a few end. */
function simulate(rand: () => number, steps: number, maxPaths: number): Sim {
  const events: EabEvent[] = [];
  const truth = new Map<number, number[]>([[0, []]]);
  const ends = new Map<number, EndReason>();
  let live = [0];
  let next = 1;
  for (let step = 0; step < steps && live.length > 0; step++) {
    for (const id of [...live]) {
      const seq = truth.get(id)!;
      const position = seq.length;
      const k = live.length < maxPaths && rand() < 0.25 ? 2 + Math.floor(rand() * 2) : 1;
      // Distinct tokens per branch point, as draws without replacement give.
      const base = Math.floor(rand() * 400);
      const tokens = Array.from({ length: k }, (_, i) => base + i * 37);
      const members = [id];
      for (let i = 1; i < k; i++) {
        truth.set(next, seq.slice(0, position));
        members.push(next++);
      }
      const entropy = rand();
      members.forEach((m, i) => {
        truth.get(m)!.push(tokens[i]);
        events.push({ type: 'token', path: m, token: tokens[i], position, entropy, logprob: Math.log(0.05 + 0.9 * rand()), confidence: 1 });
      });
      if (k > 1) events.push({ type: 'fork', parent: id, children: members.slice(1), tokens, position, entropy });
      live.push(...members.slice(1));
      for (const m of members) {
        const r = rand();
        const reason: EndReason | null = r < 0.04 ? 'eos' : r < 0.07 ? 'pruned' : step === steps - 1 ? 'length' : null;
        if (!reason) continue;
        ends.set(m, reason);
        live = live.filter((x) => x !== m);
        events.push(reason === 'pruned' ? { type: 'prune', path: m, reason: 'min_path_prob' } : { type: 'finish', path: m, reason });
      }
    }
  }
  return { events, truth, ends };
}

const decode = (ids: readonly number[]) => ids.map((t) => `t${t} `).join('');

describe('tree from EAB events', () => {
  it('attaches a child whose token arrives before the fork event, and rebuilds every full sequence', () => {
    // Typed as EAB's own events: this also checks that the tree takes them as they are.
    const events: EabEvent[] = [
      { type: 'token', path: 0, token: 10, position: 0, entropy: 0.1, logprob: -0.1, confidence: 1 },
      { type: 'token', path: 0, token: 11, position: 1, entropy: 0.7, logprob: -1, confidence: 1 },
      { type: 'token', path: 1, token: 12, position: 1, entropy: 0.7, logprob: -2, confidence: 1 },
      { type: 'fork', parent: 0, children: [1], tokens: [11, 12], position: 1, entropy: 0.7 },
      { type: 'token', path: 0, token: 13, position: 2, entropy: 0.2, logprob: -0.3, confidence: 1 },
      { type: 'token', path: 1, token: 14, position: 2, entropy: 0.3, logprob: -0.4, confidence: 1 },
      { type: 'finish', path: 1, reason: 'eos' },
      { type: 'prune', path: 0, reason: 'max_paths' },
    ];
    const s = treeFromEvents(events);
    expect(s.paths.get(1)).toMatchObject({ parent: 0, forkPos: 1, fork: { entropy: 0.7 }, end: 'eos' });
    expect(s.paths.get(0)?.end).toBe('pruned');
    expect(fullTokens(s, 0).map((t) => t.id)).toEqual([10, 11, 13]);
    expect(fullTokens(s, 1).map((t) => t.id)).toEqual([10, 12, 14]);
    const L = layoutTree(s);
    expect(L.rows).toEqual([0, 1]);
    expect(L.forks).toEqual([{ row: 0, at: 1, fork: { entropy: 0.7, confidence: undefined }, childRows: [1] }]);
    expect(L.segments.map((g) => [g.path, g.from, g.to])).toEqual([[0, 0, 1], [0, 1, 3], [1, 1, 3]]);
  });

  it('hangs branches from position 0 off the prompt, and an earlier-position branch off the ancestor that owns it', () => {
    const s = emptyTree();
    const tok = (path: number, position: number, token: number): EabEvent => ({ type: 'token', path, token, position, entropy: 0.5, logprob: -1, confidence: 1 });
    for (const e of [tok(0, 0, 1), tok(1, 0, 2), tok(0, 1, 3), tok(1, 1, 4), tok(0, 2, 5), tok(1, 2, 6), tok(2, 1, 7)]) applyEvent(s, e);
    applyEvent(s, { type: 'fork', parent: 0, children: [1], position: 0, entropy: 0.9 });
    applyEvent(s, { type: 'fork', parent: 1, children: [2], position: 1, entropy: 0.2 });
    // A prefix branch (confidence peaks) of path 2 at its own fork position shares 2's fork node on path 1's row.
    applyEvent(s, tok(3, 1, 8));
    applyEvent(s, { type: 'fork', parent: 2, children: [3], position: 1, entropy: 0.6 });
    const L = layoutTree(s);
    expect(L.rows).toEqual([0, 1, 2, 3]);
    expect(L.rootRows).toEqual([0, 1]);
    expect(L.forks).toEqual([{ row: 1, at: 1, fork: { entropy: 0.2, confidence: undefined }, childRows: [2, 3] }]);
    expect(fullTokens(s, 2).map((t) => t.id)).toEqual([2, 7]);
    expect(fullTokens(s, 3).map((t) => t.id)).toEqual([2, 8]);
  });

  it('lays out random runs: one row and one leaf per path, every token drawn once, no connector crossing a row', () => {
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (let run = 0; run < 40; run++) {
      const sim = simulate(rand, 2 + Math.floor(rand() * 30), 1 + Math.floor(rand() * 20));
      const state = treeFromEvents(sim.events);
      const L = layoutTree(state);
      const msg = `seed ${seed}, run ${run}`;
      expect(new Set(L.rows).size, msg).toBe(sim.truth.size);
      expect(L.leaves.length, msg).toBe(sim.truth.size);
      for (const [id, seq] of sim.truth) expect(fullTokens(state, id).map((t) => t.id), `${msg}, path ${id}`).toEqual(seq);
      for (const l of L.leaves) expect(l.end, msg).toBe(sim.ends.get(l.path) ?? null);
      const own = [...state.paths.values()].reduce((a, p) => a + p.tokens.length, 0);
      expect(L.segments.reduce((a, g) => a + g.to - g.from, 0), msg).toBe(own);
      const start = L.rows.map((id) => state.paths.get(id)!.forkPos);
      for (const f of L.forks) {
        const last = Math.max(...f.childRows);
        expect(f.childRows.every((r) => r > f.row), msg).toBe(true);
        // Between the fork's row and its last child, every other row starts right of the connector.
        for (let r = f.row + 1; r < last; r++) if (!f.childRows.includes(r)) expect(start[r], `${msg}, fork row ${f.row} at ${f.at}, row ${r}`).toBeGreaterThan(f.at);
      }
    }
  });
});

describe('tree SVG', () => {
  const sim = simulate(mulberry32(7), 24, 12);
  const state = treeFromEvents(sim.events);

  it('draws one leaf per path with its ending, a cell per token and a node per fork', () => {
    const svg = renderTreeSvg(state, { decode, prompt: 'Once' });
    const count = (re: RegExp) => (svg.match(re) ?? []).length;
    expect(count(/data-leaf="/g)).toBe(sim.truth.size);
    for (const end of ['eos', 'length', 'pruned'] as const)
      expect(count(new RegExp(`data-end="${end}"`, 'g'))).toBe([...sim.ends.values()].filter((e) => e === end).length);
    expect(count(/class="t-tok"/g)).toBe([...state.paths.values()].reduce((a, p) => a + p.tokens.length, 0));
    expect(count(/<title>fork at token/g)).toBe(layoutTree(state).forks.length);
    expect(svg).toMatch(/^<svg [^>]*width="\d+" height="\d+"/);
    expect(svg.endsWith('</svg>')).toBe(true);
  });

  it('escapes token text and keeps the page styles scoped to the tree', () => {
    const s = treeFromEvents([
      { type: 'token', path: 0, token: 1, position: 0, entropy: 0.5, logprob: -1, confidence: 1 },
      { type: 'finish', path: 0, reason: 'length' },
    ]);
    const svg = renderTreeSvg(s, { decode: () => '<b>&"x"\nnext', prompt: 'a<b' });
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('&#60;b&#62;&#38;&#34;x&#34;⏎next');
    expect(svg).toContain('a&#60;b');
    const css = /<style>(.*?)<\/style>/.exec(svg)![1];
    for (const rule of css.split('}').filter(Boolean)) expect(rule.split('{')[0].split(',').every((sel) => sel.startsWith('svg.forklm-tree '))).toBe(true);
  });

  it('colours by entropy or by probability on one scale, clamped', () => {
    expect(colorScale(0)).toBe('#2c5fa8');
    expect(colorScale(1)).toBe('#b8212f');
    expect(colorScale(-3)).toBe(colorScale(0));
    expect(colorScale(Number.NaN)).toBe(colorScale(1));
    const one = (logprob: number, entropy: number) =>
      treeFromEvents([{ type: 'token', path: 0, token: 1, position: 0, entropy, logprob, confidence: 1 }]);
    const fill = (svg: string) => /class="t-tok"[^>]*fill="([^"]+)"/.exec(svg)![1];
    expect(fill(renderTreeSvg(one(Math.log(0.9), 0.8), { decode, colorBy: 'entropy' }))).toBe(colorScale(0.8));
    expect(fill(renderTreeSvg(one(Math.log(0.9), 0.8), { decode, colorBy: 'probability' }))).toBe(colorScale(1 - 0.9));
  });

  it('colours by confidence relative to the tree, and greys out a measure the mode did not report', () => {
    const events: TreeEvent[] = [
      { type: 'token', path: 0, token: 1, position: 0, confidence: 4 },
      { type: 'token', path: 0, token: 2, position: 1, confidence: 12 },
      { type: 'token', path: 0, token: 3, position: 2, confidence: 10 },
    ];
    const s = treeFromEvents(events);
    expect(confidenceRange(s)).toEqual([4, 12]);
    // (12 - 10) / (12 - 4) = 0.25: three quarters of the way to the surest token
    expect(uncertainty({ confidence: 10 }, 'confidence', [4, 12])).toBe(0.25);
    const fills = (svg: string) => [...svg.matchAll(/class="t-tok"[^>]*fill="([^"]+)"/g)].map((m) => m[1]);
    expect(fills(renderTreeSvg(s, { decode, colorBy: 'confidence' }))).toEqual([colorScale(1), colorScale(0), colorScale(0.25)]);
    expect(new Set(fills(renderTreeSvg(s, { decode, colorBy: 'entropy' })))).toEqual(new Set(['#c9ced4']));
    expect(renderLegendSvg('confidence', 600, undefined, [4, 12])).toContain('12.0 sure');
  });

  it('grows with depth and rows, and can leave the legend out', () => {
    const size = (svg: string) => /width="(\d+)" height="(\d+)"/.exec(svg)!.slice(1).map(Number);
    const small = treeFromEvents(simulate(mulberry32(3), 4, 1).events);
    // Cells at their widest (28 px), so the width follows the depth rather than the 360 px floor.
    const [w1, h1] = size(renderTreeSvg(small, { decode, targetWidth: 2000 }));
    const [w2, h2] = size(renderTreeSvg(state, { decode, targetWidth: 2000 }));
    expect(w2).toBeGreaterThan(w1);
    expect(h2).toBeGreaterThan(h1);
    expect(renderTreeSvg(state, { decode, legend: false })).not.toContain('class="t-legend"');
    expect(renderLegendSvg('entropy', 600, 0.4)).toContain('class="t-threshold"');
    expect(renderLegendSvg('probability', 600, 0.4)).not.toContain('class="t-threshold"');
    // On a phone-wide legend the marker key wraps under the scale instead of running off the edge.
    const height = (svg: string) => Number(/height="(\d+)"/.exec(svg)![1]);
    const narrow = renderLegendSvg('entropy', 340);
    expect(height(narrow)).toBeGreaterThan(height(renderLegendSvg('entropy', 700)));
    const labelsX = [...narrow.matchAll(/<text x="([\d.]+)" y="\d+">(fork|end of text|length|pruned|stopped|running)</g)].map((m) => Number(m[1]));
    expect(labelsX.length).toBe(6);
    // 18 px margin each side; the longest label ("end of text") is about 70 px at 11 px.
    for (const x of labelsX) expect(18 + x + 70).toBeLessThanOrEqual(340);
  });
});

describe('panels', () => {
  it('shares are a softmax of log p that survives probabilities far below the f64 range', () => {
    const s = shares([
      { path: 0, text: '', logProb: -1000, tokens: 1, finish: 'eos' },
      { path: 1, text: '', logProb: -1001, tokens: 1, finish: 'eos' },
    ]);
    // exact: 1 / (1 + e^-1)
    expect(s[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
    expect(s[0] + s[1]).toBeCloseTo(1, 12);
  });

  it('lists samples most probable first, with p written from log p', () => {
    const html = samplesHtml(
      [
        { path: 3, text: 'low', logProb: -55.37, tokens: 64, finish: 'length' },
        { path: 5, text: 'high <i>', logProb: -0.5, tokens: 9, finish: 'eos' },
      ],
      'Once',
    );
    expect(html.indexOf('data-path="5"')).toBeLessThan(html.indexOf('data-path="3"'));
    // e^-55.37 = 8.9767e-25
    expect(html).toContain('p = 8.98e-25');
    expect(html).toContain('p = 0.607');
    expect(html).toContain('high &#60;i&#62;');
  });

  it('shows token steps against naive and the counts, with machine-readable values', () => {
    const v: StatsView = {
      promptTokens: 5, tokenSteps: 871, naiveTokenSteps: 1380, pagesInUse: 0, pagesPeak: 81, naivePages: 100, tokensPerS: 212.4, generated: 1280,
      forks: 23, pruned: 4, samples: 20, live: 0, steps: 64, ms: 6220, done: true,
    };
    const html = statsHtml(v);
    expect(html).toContain('data-stat="token_steps" data-value="871"');
    expect(html).toContain('data-stat="naive_token_steps" data-value="1380"');
    expect(html).toContain('63% of naive');
    expect(html).toContain('/ 100 naive');
    expect(statsHtml({ ...v, done: false })).toContain('(so far)');
  });
});

describe('Hugging Face repository ids', () => {
  it.each([
    ['HuggingFaceTB/SmolLM2-135M', 'HuggingFaceTB/SmolLM2-135M@main'],
    ['https://huggingface.co/Qwen/Qwen2.5-0.5B/', 'Qwen/Qwen2.5-0.5B@main'],
    ['https://huggingface.co/Qwen/Qwen2.5-0.5B/tree/v1.0', 'Qwen/Qwen2.5-0.5B@v1.0'],
    [' https://huggingface.co/a/b/blob/main/config.json ', 'a/b@main'],
  ])('%s', (input, id) => expect(hfHubId(input)).toBe(id));

  it.each(['', 'justaname', '../etc/passwd', 'a/../b', 'https://example.com/a/b'])('rejects %j', (input) => {
    expect(() => hfHubId(input)).toThrow(/Hugging Face repository/);
  });
});
