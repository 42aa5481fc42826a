// The chart of the Chromium benchmark (bench/browser.ts): bench/results/browser.svg from its JSON. Four panels:
// stories260K tokens/s and matmul GFLOP/s in Chromium next to Node's (from the comparison rows), batch scaling per
// adapter (Node dashed), and rows computed by naive / fork-at-0 / EAB and by re-encoding / true peak branching.
// Registered in bench/charts.ts (`node --import tsx bench/charts.ts browser` redraws it from browser.json alone).
import { barChart, lineChart, svgDocument, type LineSeries } from './svg.js';

const ADAPTERS = ['swiftshader', 'llvmpipe'] as const;
type Adapter = (typeof ADAPTERS)[number];
const COLORS: Record<Adapter, string> = { swiftshader: '#1f77b4', llvmpipe: '#ff7f0e' };

type EabMode = { tokenSteps: number; ms: number };
interface Sections {
  kernels?: { matmul?: { M: number; variant: string; gflops?: number; picked?: boolean }[] };
  decode?: { prefill?: { promptTokens: number; tokensPerS: number }; decode?: { tokensPerS: number } };
  batch?: { results?: { B: number; tokensPerS: number; ratioToB1: number }[] };
  eab?: { samples?: number; newTokens?: number; cases?: { promptTokens: number; naive: EabMode; forkAt0: EabMode; eab: EabMode }[] };
  peaks?: { trueBranching?: { traces: number; tokensComputed: number; tokensReencode: number }; simulatedBranching?: { tokensComputed: number } };
}
interface Launch {
  chromium?: string;
  adapterInfo?: { name: string };
  error?: string;
  sections: Sections;
}
export interface BrowserJson {
  date: string;
  machine: { cpu: string; cores: number };
  chromium: string | null;
  quick?: boolean;
  swiftshader?: Launch;
  llvmpipe?: Launch;
  comparison?: { rows: { metric: string; adapter: Adapter; node: number | null; chromium: number | null }[] };
}

function launchesOf(j: BrowserJson): [Adapter, Sections][] {
  return ADAPTERS.filter((a) => j[a] && !j[a]!.error).map((a) => [a, j[a]!.sections]);
}

/** Node's number for a comparison metric, or null. */
function nodeValue(j: BrowserJson, adapter: Adapter, metric: string): number | null {
  return j.comparison?.rows.find((r) => r.adapter === adapter && r.metric === metric)?.node ?? null;
}

function caption(j: BrowserJson): string {
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  return (
    `Headless Chromium ${j.chromium ?? '?'} (playwright-core), ${j.machine.cpu}, ${j.machine.cores} cores, no GPU: SwiftShader ` +
    `(Vulkan) and llvmpipe (ANGLE GL, compatibility mode). Node: bench/results/*.json. ${j.date.slice(0, 10)}. Shared machine: noisy.${quick}`
  );
}

export function browserChart(j: BrowserJson): string {
  const ls = launchesOf(j);
  // Panel 1: engine tokens/s, Chromium and Node.
  const rates: { label: string; adapter: Adapter; chromium: number | null; metric: string }[] = [];
  for (const [a, s] of ls) {
    const p = s.decode?.prefill;
    if (p) rates.push({ label: `prefill ${p.promptTokens}\n${a}`, adapter: a, chromium: p.tokensPerS, metric: `stories260K prefill ${p.promptTokens} tokens` });
    if (s.decode?.decode) rates.push({ label: `decode 1 path\n${a}`, adapter: a, chromium: s.decode.decode.tokensPerS, metric: 'stories260K decode, one path' });
    const b = s.batch?.results?.at(-1);
    if (b) rates.push({ label: `batch B=${b.B}\n${a}`, adapter: a, chromium: b.tokensPerS, metric: `stories260K batch B=${b.B}` });
  }
  const p1 = barChart(
    { x: 0, y: 0, width: 600, height: 400 },
    {
      title: 'stories260K tokens/s: Chromium and Node (log scale)',
      categories: rates.map((r) => r.label),
      groups: [
        { name: 'Chromium', values: rates.map((r) => r.chromium) },
        { name: 'Node (webgpu/Dawn)', values: rates.map((r) => nodeValue(j, r.adapter, r.metric)), color: '#999' },
      ],
      y: { label: 'tokens/s', log: true },
    },
  );
  // Panel 2: matmul GFLOP/s per variant.
  const mm = ls.flatMap(([a, s]) => (s.kernels?.matmul ?? []).filter((m) => m.gflops !== undefined).map((m) => ({ a, m })));
  const p2 = barChart(
    { x: 600, y: 0, width: 600, height: 400 },
    {
      title: 'matmul K=N=2048, GFLOP/s by rows M and variant (* = the pick)',
      categories: mm.map(({ a, m }) => `M=${m.M} ${m.variant}${m.picked ? '*' : ''}\n${a}`),
      groups: [
        { name: 'Chromium', values: mm.map(({ m }) => m.gflops ?? null) },
        { name: 'Node', values: mm.map(({ a, m }) => nodeValue(j, a, `matmul K=N=2048 M=${m.M} ${m.variant}`)), color: '#999' },
      ],
      y: { label: 'GFLOP/s', log: true },
    },
  );
  // Panel 3: batch scaling in Chromium.
  const Bs = [...new Set(ls.flatMap(([, s]) => (s.batch?.results ?? []).map((r) => r.B)))].sort((a, b) => a - b);
  const series: LineSeries[] = ls
    .filter(([, s]) => s.batch?.results?.length)
    .flatMap(([a, s]) => {
      const rs = s.batch!.results!;
      const node = rs.map((r) => ({ x: r.B, y: nodeValue(j, a, `stories260K batch B=${r.B}`) })).filter((q): q is { x: number; y: number } => q.y !== null);
      const chromium: LineSeries = { name: `${a}, Chromium`, color: COLORS[a], points: rs.map((r) => ({ x: r.B, y: r.tokensPerS })) };
      return node.length ? [chromium, { name: `${a}, Node`, color: COLORS[a], dashed: true, points: node }] : [chromium];
    });
  const p3 = lineChart(
    { x: 0, y: 400, width: 600, height: 400 },
    {
      title: 'Batched decoding: aggregate tokens/s (stories260K)',
      series,
      x: { label: 'live paths B (all decoding, context ~64)', log: true, ticks: Bs.length ? Bs : [1] },
      y: { label: 'tokens/s', log: true },
    },
  );
  // Panel 4: rows computed by each method (EAB cases per adapter, peaks); EAB's wall-clock gain in the labels.
  const eab = ls.flatMap(([a, s]) => (s.eab?.cases ?? []).map((c) => ({ a, c, N: s.eab?.samples })));
  const peaks = ls.map(([a, s]) => ({ a, p: s.peaks })).filter((x) => x.p?.trueBranching && x.p.simulatedBranching);
  // Peak branching replays the same tree on both adapters when their sampled tokens agree: one bar then.
  const peaksSame = peaks.every(({ p }) => p!.trueBranching!.tokensComputed === peaks[0].p!.trueBranching!.tokensComputed);
  const peaksShown = peaksSame ? peaks.slice(0, 1) : peaks;
  const p4 = barChart(
    { x: 600, y: 400, width: 600, height: 400 },
    {
      title: 'Rows computed (token steps) per method',
      categories: [
        ...eab.map(({ a, c, N }) => `EAB L=${c.promptTokens} N=${N}\n${a}\nwall: naive / EAB ${(c.naive.ms / c.eab.ms).toFixed(1)}x`),
        ...peaksShown.map(({ a, p }) => `peaks, ${p!.trueBranching!.traces} traces\n${peaksSame && peaks.length > 1 ? 'both adapters' : a}`),
      ],
      groups: [
        {
          name: 'naive N samples / re-encoding each branch',
          values: [...eab.map(({ c }) => c.naive.tokenSteps), ...peaksShown.map(({ p }) => p!.trueBranching!.tokensReencode)],
        },
        { name: 'fork-at-0', values: [...eab.map(({ c }) => c.forkAt0.tokenSteps), ...peaksShown.map(() => null)] },
        {
          name: 'EAB / true peak branching',
          values: [...eab.map(({ c }) => c.eab.tokenSteps), ...peaksShown.map(({ p }) => p!.trueBranching!.tokensComputed)],
        },
      ],
      y: { label: 'rows computed', min: 0 },
    },
  );
  return svgDocument(1200, 830, [p1, p2, p3, p4], caption(j));
}
