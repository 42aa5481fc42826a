// The chart of the kernel benchmark (bench/kernels.ts): bench/results/kernels.svg from its JSON. Panels: matmul
// GFLOP/s at K=N=2048 per rows M and adapter against shared/webgpu-on-cpu.md's figures; the decode/prefill crossover
// sweep (llvmpipe); GFLOP/s of SmolLM2-135M's projection shapes; GB/s of the other kernels. Registered in
// bench/charts.ts.
import { barChart, lineChart, svgDocument } from './svg.js';

interface MatmulRow {
  label: string;
  M: number;
  variant: string;
  medianMs: number;
  gflops: number;
  gflopsBest: number;
}
interface KernelRow {
  kernel: string;
  rows?: number;
  gbps?: number;
  error?: string;
  skipped?: string;
}
interface AdapterJson {
  adapter: string;
  name?: string;
  error?: string;
  otherLoad?: number | null;
  vsReference?: { M: number; gflops: number; reference: number; ratio: number }[];
  matmul?: MatmulRow[];
  sweep?: MatmulRow[];
  kernels?: KernelRow[];
}
export interface KernelsJson {
  date: string;
  machine: { cpu: string; cores: number };
  quick?: boolean;
  adapters: AdapterJson[];
}

const ADAPTER_COLORS: Record<string, string> = { llvmpipe: '#ff7f0e', swiftshader: '#1f77b4' };

function caption(j: KernelsJson, ok: AdapterJson[]): string {
  const load = ok.map((a) => `${a.adapter} ${a.otherLoad === null || a.otherLoad === undefined ? '?' : Math.round(a.otherLoad * 100)}%`).join(', ');
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  return (
    `${j.machine.cpu}, ${j.machine.cores} cores, no GPU: software WebGPU in Node (webgpu/Dawn). ${j.date.slice(0, 10)}. ` +
    `Medians of batched samples; CPU used by other processes meanwhile: ${load}.${quick}`
  );
}

export function kernelsChart(j: KernelsJson): string {
  const ok = j.adapters.filter((a) => !a.error);
  const W = 1240;
  const panels: string[] = [];

  // Matmul against the reference figures of shared/webgpu-on-cpu.md (Node, same shapes).
  const ref = ok.flatMap((a) =>
    (a.vsReference ?? []).map((r) => ({ a, r, best: a.matmul?.find((m) => m.label === 'square 2048' && m.M === r.M)?.gflopsBest ?? null })),
  );
  const variantOf = (a: AdapterJson, M: number) => a.matmul?.find((m) => m.label === 'square 2048' && m.M === M)?.variant ?? '?';
  panels.push(
    barChart(
      { x: 0, y: 0, width: 620, height: 420 },
      {
        title: 'matmul K=N=2048: GFLOP/s against shared/webgpu-on-cpu.md (log)',
        categories: ref.map(({ a, r }) => `M=${r.M} ${variantOf(a, r.M)}\n${a.adapter}`),
        groups: [
          { name: 'this run, median', values: ref.map(({ r }) => r.gflops), color: '#2ca02c' },
          { name: 'this run, fastest sample', values: ref.map(({ best }) => best), color: '#98df8a' },
          { name: 'webgpu-on-cpu.md, Node (its kernels: 1 thread per output; 64x64 tile at M=128)', values: ref.map(({ r }) => r.reference), color: '#999' },
        ],
        y: { label: 'GFLOP/s', log: true },
      },
    ),
  );

  // The crossover sweep: both CPU variants forced at each M (llvmpipe only).
  const sweepers = ok.filter((a) => a.sweep?.length);
  if (sweepers.length) {
    const Ms = [...new Set(sweepers.flatMap((a) => a.sweep!.map((r) => r.M)))].sort((x, y) => x - y);
    const series = sweepers.flatMap((a) =>
      ['decode', 'prefill'].map((v, i) => ({
        name: `${v} variant${sweepers.length > 1 ? `, ${a.adapter}` : ''}`,
        points: a.sweep!.filter((r) => r.variant === v).map((r) => ({ x: r.M, y: r.medianMs })),
        color: i === 0 ? '#1f77b4' : '#d62728',
      })),
    );
    panels.push(
      lineChart(
        { x: 620, y: 0, width: 620, height: 420 },
        {
          title: `Decode vs prefill variant forced, K=N=2048, ${sweepers.map((a) => a.adapter).join(', ')} (lower is faster)`,
          series,
          x: { label: 'rows M', log: true, ticks: Ms },
          y: { label: 'ms per call (median)', min: 0 },
        },
      ),
    );
  }

  // SmolLM2-135M projection shapes, per (adapter, M).
  const shapes = [...new Set(ok.flatMap((a) => (a.matmul ?? []).filter((m) => m.label.startsWith('smollm2')).map((m) => m.label)))];
  const combos = ok.flatMap((a) =>
    [...new Set((a.matmul ?? []).filter((m) => m.label.startsWith('smollm2')).map((m) => m.M))].map((M) => ({ a, M })),
  );
  // Shades of each adapter's colour, light to dark as M grows.
  const shades: Record<string, string[]> = { swiftshader: ['#9ecae1', '#4292c6', '#08519c'], llvmpipe: ['#fdae6b', '#f16913', '#a63603'] };
  panels.push(
    barChart(
      { x: 0, y: 420, width: W, height: 400 },
      {
        title: "matmul at SmolLM2-135M's shapes (K -> N): GFLOP/s by rows M and adapter (log scale)",
        categories: shapes.map((s) => {
          const m = ok.flatMap((a) => a.matmul ?? []).find((r) => r.label === s) as (MatmulRow & { K?: number; N?: number }) | undefined;
          return `${s.replace('smollm2 ', '')}\n${m?.K ?? '?'} -> ${m?.N ?? '?'}`;
        }),
        groups: combos.map(({ a, M }, i) => ({
          name: `${a.adapter} M=${M}`,
          values: shapes.map((s) => a.matmul!.find((r) => r.label === s && r.M === M)?.gflops ?? null),
          color: (shades[a.adapter] ?? shades.llvmpipe)[combos.filter((c, k) => k < i && c.a === a).length % 3],
        })),
        y: { label: 'GFLOP/s', log: true },
      },
    ),
  );

  // The other kernels: GB/s of the bytes each call must move.
  const cases = [
    ...new Map(
      ok.flatMap((a) => (a.kernels ?? []).filter((k) => k.gbps !== undefined).map((k) => [`${k.kernel}|${k.rows}`, k] as const)),
    ).values(),
  ];
  panels.push(
    barChart(
      { x: 0, y: 820, width: W, height: 420 },
      {
        title: 'Other kernels at SmolLM2-135M sizes: GB/s of the bytes a call must read and write (log scale)',
        categories: cases.map((k) => `${k.kernel.replace('_', '\n')}\n${k.rows} row${k.rows === 1 ? '' : 's'}`),
        groups: ok.map((a) => ({
          name: a.adapter,
          values: cases.map((c) => a.kernels?.find((k) => k.kernel === c.kernel && k.rows === c.rows)?.gbps ?? null),
          color: ADAPTER_COLORS[a.adapter],
        })),
        y: { label: 'GB/s (median)', log: true },
        valueLabels: false,
      },
    ),
  );
  return svgDocument(W, 1262, panels, caption(j, ok));
}
