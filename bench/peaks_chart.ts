// The chart of the confidence-peak benchmark (bench/peaks.ts): bench/results/peaks.svg from its JSON. Two panels over
// the same categories (each prompt, then the total): rows computed and wall clock of true branching (page-table
// forks), simulated branching (the same tree, each branch re-encoded from the prompt), and uniform sampling with as
// many traces, or as many rows. Registered in bench/charts.ts.
import { barChart, svgDocument } from './svg.js';

interface Method {
  traces: number;
  tokens_computed: number;
  ms: number;
}
type Totals = Record<MethodName, Method>;
type MethodName = 'true_branching' | 'simulated_branching' | 'uniform_same_samples' | 'uniform_same_compute';
interface AdapterResult {
  adapter: string;
  error?: string;
  prompts?: { prompt: string; prompt_tokens: number; methods: Totals }[];
  totals?: Totals;
}
export interface PeaksJson {
  date?: string;
  machine: { cpu: string; cores: number };
  quick?: boolean;
  params: { initial_traces: number; max_traces: number; max_new_tokens: number };
  results: AdapterResult[];
  other_load?: number | null;
}

const METHODS: { key: MethodName; name: string; color: string }[] = [
  { key: 'true_branching', name: 'true branching (page-table forks at the peaks)', color: '#2ca02c' },
  { key: 'simulated_branching', name: 'simulated: same tree, branches re-encoded', color: '#d62728' },
  { key: 'uniform_same_samples', name: 'uniform, as many traces', color: '#1f77b4' },
  { key: 'uniform_same_compute', name: 'uniform, as many rows', color: '#9467bd' },
];

/** A prompt shortened for an axis label, over two lines. */
function promptLabel(p: string): string {
  const words = p.split(' ');
  const first: string[] = [];
  while (words.length && [...first, words[0]].join(' ').length <= 22) first.push(words.shift()!);
  const rest = words.join(' ');
  return `"${first.join(' ')}${rest ? '' : '"'}${rest ? `\n${rest.length > 24 ? `${rest.slice(0, 22)}...` : rest}"` : ''}`;
}

export function peaksChart(j: PeaksJson): string {
  const ok = j.results.filter((r) => !r.error && r.prompts && r.totals);
  const many = ok.length > 1;
  // Traces: true branching's (= simulated = uniform, as many traces), then how many fit in its rows.
  const traces = (m: Totals, where: string) =>
    `${m.true_branching.traces} traces (${m.uniform_same_compute.traces} for as many rows)${many ? `\n${where}` : ''}`;
  const cats: { label: string; m: Totals }[] = ok.flatMap((r) => [
    ...r.prompts!.map((p) => ({ label: `${promptLabel(p.prompt)}\n${traces(p.methods, r.adapter)}`, m: p.methods })),
    { label: `total, ${r.prompts!.length} prompt${r.prompts!.length === 1 ? '' : 's'}\n${traces(r.totals!, r.adapter)}`, m: r.totals! },
  ]);
  const W = Math.max(900, 190 * cats.length + 100);
  /** One panel: a bar per method and category of `f`, with headroom above the tallest bar for its value label. */
  const panel = (y: number, title: string, label: string, f: (m: Method) => number) =>
    barChart(
      { x: 0, y, width: W, height: 400 },
      {
        title,
        categories: cats.map((c) => c.label),
        groups: METHODS.map((k) => ({ name: k.name, color: k.color, values: cats.map((c) => f(c.m[k.key])) })),
        y: { label, min: 0, max: 1.12 * Math.max(1, ...cats.flatMap((c) => METHODS.map((k) => f(c.m[k.key])))) },
      },
    );
  const top = panel(0, 'Rows computed (token steps) per method, each prompt and in total', 'rows computed', (m) => m.tokens_computed);
  const bottom = panel(400, 'Wall clock per method (fastest of the repeats; each run from an empty KV cache)', 'ms', (m) => m.ms);
  const p = j.params;
  const load = j.other_load === null || j.other_load === undefined ? '?' : `${Math.round(j.other_load * 100)}%`;
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  const cap =
    `stories260K, ${ok.map((r) => r.adapter).join(', ')} (Node), ${p.initial_traces} initial traces, at most ${p.max_traces}, ` +
    `${p.max_new_tokens} new tokens. ${j.machine.cpu}, ${j.machine.cores} cores, no GPU.${j.date ? ` ${j.date.slice(0, 10)}.` : ''} ` +
    `CPU used by other processes: ${load}.${quick}`;
  return svgDocument(W, 822, [top, bottom], cap);
}
