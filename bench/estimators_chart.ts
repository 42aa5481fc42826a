// The chart of the estimators benchmark (bench/estimators.ts): bench/results/estimators.svg from its JSON. Top: how
// far each estimator's mean over the runs is from the 20,000-sample reference, in standard errors (|z|, log scale; 4
// is the line between "consistent with unbiased" and not), per quantity, worst prompt. Bottom: token steps that
// independent samples need for one standard error, over what each unbiased estimator needs (> 1: it saves compute).
// Registered in bench/charts.ts.
import { barChart, svgDocument } from './svg.js';

interface Row {
  method: string;
  weighting: string;
  z: number;
  savingVsIndependent: number | null;
}
export interface EstimatorsJson {
  date: string;
  machine: { cpu: string; cores: number };
  quick?: boolean;
  otherLoad?: number | null;
  params: { horizon: number; iid: number; runs: number };
  prompts: { prompt: string; quantities: { name: string; estimators: Row[] }[] }[];
}

export function estimatorsChart(j: EstimatorsJson): string {
  const quantities = j.prompts[0]?.quantities.map((q) => q.name.replace(/"[^"]*"/, '"w"')) ?? [];
  const labels = j.prompts[0]?.quantities[0]?.estimators.map((e) => `${e.method}\n${e.weighting}`) ?? [];
  const all = (qi: number, ei: number) => j.prompts.map((p) => p.quantities[qi].estimators[ei]);
  const W = Math.max(1000, 78 * labels.length + 120);
  const top = barChart(
    { x: 0, y: 0, width: W, height: 430 },
    {
      title: `Bias: |mean over ${j.params.runs} runs - reference| in standard errors (worst of ${j.prompts.length} prompts; log scale)`,
      categories: labels,
      groups: quantities.map((q, qi) => ({ name: q, values: labels.map((_, ei) => Math.max(0.01, ...all(qi, ei).map((e) => Math.abs(e.z)))) })),
      y: { label: '|z|', log: true },
      refs: [{ value: 4, label: '4 SE', color: '#d62728' }],
      valueLabels: false,
    },
  );
  const unbiased = labels.map((_, ei) => ei).filter((ei) => quantities.some((_, qi) => all(qi, ei).every((e) => e.savingVsIndependent !== null)));
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  const bottom = barChart(
    { x: 0, y: 430, width: W, height: 400 },
    {
      title: 'Compute at equal error: token steps of independent samples / token steps of the estimator, same standard error (geometric mean over prompts)',
      categories: unbiased.map((ei) => labels[ei]),
      groups: quantities.map((q, qi) => ({
        name: q,
        values: unbiased.map((ei) => {
          const xs = all(qi, ei).map((e) => e.savingVsIndependent);
          return xs.every((x): x is number => x !== null && x > 0) ? geo(xs) : null;
        }),
      })),
      y: { label: 'saving (x)', min: 0 },
      refs: [{ value: 1, label: 'independent samples', color: '#555' }],
    },
  );
  const load = typeof j.otherLoad === 'number' ? `${Math.round(j.otherLoad * 100)}%` : '?';
  const cap =
    `stories260K, llvmpipe (Node), ${j.params.horizon} new tokens, reference ${j.params.iid} independent samples per prompt, ` +
    `${j.params.runs} runs per estimator. ${j.machine.cpu}, ${j.machine.cores} cores. ${j.date.slice(0, 10)}. ` +
    `CPU used by other processes: ${load}.${j.quick ? ' QUICK RUN (numbers meaningless).' : ''}`;
  return svgDocument(W, 852, [top, bottom], cap);
}
