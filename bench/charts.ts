// Charts from benchmark JSON: bench/results/<name>.svg for every benchmark of bench/run.ts. decode, batch and eab are
// drawn here; kernels, peaks and browser in their own files (registered in CHARTS below). bench/run.ts calls
// writeChart after each benchmark; `node --import tsx bench/charts.ts [name...]` redraws them from the JSON alone.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { browserChart } from './browser_chart.js';
import { estimatorsChart } from './estimators_chart.js';
import { kernelsChart } from './kernels_chart.js';
import { peaksChart } from './peaks_chart.js';
import { peersChart } from './peers_chart.js';
import { barChart, lineChart, svgDocument, type LineSeries } from './svg.js';

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

interface Common {
  date: string;
  machine: { cpu: string; cores: number };
  quick?: boolean;
  /** Share of the CPU other processes used during the benchmark (bench/harness.ts startLoadMeter). */
  otherLoad?: number | null;
}
interface DecodeJson extends Common {
  cases: {
    model: string;
    adapter: string;
    error?: string;
    prefill?: { promptTokens: number; tokensPerS: number };
    decode?: { tokensPerS: number; llamaCppTokensPerS?: number };
  }[];
}
interface BatchJson extends Common {
  cases: {
    model: string;
    adapter: string;
    error?: string;
    results?: { B: number; stepMsMedian: number; tokensPerS: number; ratioToB1: number }[];
  }[];
}
type EabMode = { tokenSteps: number; ms: number };
interface EabJson extends Common {
  cases: {
    model: string;
    adapter: string;
    error?: string;
    promptTokens?: number;
    samples?: number;
    entropyThreshold?: number;
    naive?: EabMode;
    forkAt0?: EabMode;
    eab?: EabMode;
  }[];
}

const SHORT: Record<string, string> = { 'smollm2-135m-random': 'SmolLM2-135M shape', stories260K: 'stories260K' };
const short = (m: string): string => SHORT[m] ?? m;

function caption(j: Common): string {
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  const load = typeof j.otherLoad === 'number' ? `CPU used by other processes: ${Math.round(j.otherLoad * 100)}%` : 'Shared machine: noisy';
  return `${j.machine.cpu}, ${j.machine.cores} cores, no GPU: software WebGPU in Node (webgpu/Dawn). ${j.date.slice(0, 10)}. ${load}.${quick}`;
}

export function decodeChart(j: DecodeJson): string {
  const cases = j.cases.filter((c) => !c.error && c.prefill && c.decode);
  const ref = cases.find((c) => c.decode?.llamaCppTokensPerS)?.decode?.llamaCppTokensPerS;
  const panel = barChart(
    { x: 0, y: 0, width: 860, height: 420 },
    {
      title: 'Single path: prefill and decode tokens/s (log scale)',
      categories: cases.map((c) => `${short(c.model)}\n${c.adapter}\nprompt ${c.prefill!.promptTokens}`),
      groups: [
        { name: 'prefill tokens/s (whole prompt in one step)', values: cases.map((c) => c.prefill!.tokensPerS) },
        { name: 'decode tokens/s (one path, greedy)', values: cases.map((c) => c.decode!.tokensPerS) },
      ],
      y: { label: 'tokens/s', log: true },
      refs: ref ? [{ value: ref, label: `llama.cpp stories260K decode, 1 CPU thread: ${ref}`, color: '#d62728' }] : [],
    },
  );
  return svgDocument(860, 440, [panel], caption(j));
}

export function batchChart(j: BatchJson): string {
  const cases = j.cases.filter((c) => !c.error && c.results?.length);
  const Bs = [...new Set(cases.flatMap((c) => c.results!.map((r) => r.B)))].sort((a, b) => a - b);
  const name = (c: BatchJson['cases'][number]) => `${short(c.model)}, ${c.adapter}`;
  const ratio: LineSeries[] = cases.map((c) => ({ name: name(c), points: c.results!.map((r) => ({ x: r.B, y: r.ratioToB1 })) }));
  ratio.push({ name: 'no batching gain: t(B) = B t(1)', points: Bs.map((B) => ({ x: B, y: B })), color: '#999', dashed: true, markers: false });
  const left = lineChart(
    { x: 0, y: 0, width: 520, height: 440 },
    {
      title: 'Step time relative to one path, t(B) / t(1)',
      series: ratio,
      x: { label: 'live paths B (all decoding, context ~64)', log: true, ticks: Bs },
      y: { label: 't(B) / t(1)', log: true, ticks: [1, 2, 4, 8, 16, 32] },
      refs: [{ value: 4, label: 'goal: t(16) <= 4 t(1)', color: '#d62728', anchor: 'start' }],
    },
  );
  const right = lineChart(
    { x: 520, y: 0, width: 520, height: 440 },
    {
      title: 'Aggregate decode tokens/s',
      series: cases.map((c) => ({ name: name(c), points: c.results!.map((r) => ({ x: r.B, y: r.tokensPerS })) })),
      x: { label: 'live paths B', log: true, ticks: Bs },
      y: { label: 'tokens/s (all paths)', log: true },
    },
  );
  return svgDocument(1040, 460, [left, right], caption(j));
}

export function eabChart(j: EabJson): string {
  const cases = j.cases.filter((c) => !c.error && c.naive && c.forkAt0 && c.eab);
  const categories = cases.map((c) => `${short(c.model)}\n${c.adapter} N=${c.samples}\nL=${c.promptTokens} thr ${c.entropyThreshold}`);
  const groups = (f: (m: EabMode) => number) => [
    { name: 'fork-at-0 (prompt once, N paths batched)', values: cases.map((c) => f(c.forkAt0!) / f(c.naive!)), color: '#ff7f0e' },
    { name: 'EAB, exact N', values: cases.map((c) => f(c.eab!) / f(c.naive!)), color: '#2ca02c' },
  ];
  const width = Math.max(760, 120 * cases.length + 100);
  const naiveRef = [{ value: 1, label: 'naive: N samples in sequence, prompt recomputed each time = 1', color: '#1f77b4' }];
  const top = barChart(
    { x: 0, y: 0, width, height: 360 },
    { title: 'Token steps (rows computed) relative to naive', categories, groups: groups((m) => m.tokenSteps), y: { label: 'token steps / naive', min: 0 }, refs: naiveRef },
  );
  const bottom = barChart(
    { x: 0, y: 360, width, height: 360 },
    { title: 'Wall clock relative to naive', categories, groups: groups((m) => m.ms), y: { label: 'wall clock / naive', min: 0 }, refs: naiveRef },
  );
  return svgDocument(width, 740, [top, bottom], caption(j));
}

/** Benchmark name -> its chart, drawn from the benchmark's JSON. */
const CHARTS: Record<string, (j: never) => string> = {
  kernels: kernelsChart,
  decode: decodeChart,
  batch: batchChart,
  eab: eabChart,
  estimators: estimatorsChart,
  peaks: peaksChart,
  peers: peersChart,
  browser: browserChart,
};

/** Writes bench/results/<name>.svg from a benchmark's result; returns the path, or null for a benchmark without one. */
export function writeChart(name: string, result: object, file = name): string | null {
  const draw = CHARTS[name];
  if (!draw) return null;
  const path = join(resultsDir, `${file}.svg`);
  writeFileSync(path, (draw as (j: object) => string)(result));
  return path;
}

/** Redraws charts from bench/results/<name>.json (default: every benchmark that has a chart and a JSON). */
function main(): void {
  const names = process.argv.slice(2).filter((a) => a !== '--');
  for (const name of names.length ? names : Object.keys(CHARTS)) {
    const json = join(resultsDir, `${name}.json`);
    if (!existsSync(json)) {
      console.error(`no ${json}: run the benchmark first (node --import tsx bench/run.ts ${name})`);
      continue;
    }
    const path = writeChart(name, JSON.parse(readFileSync(json, 'utf8')) as object);
    console.error(path ? `wrote ${path}` : `${name}: no chart for this benchmark`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
