// The chart of the peers benchmark (bench/peers.ts): bench/results/peers.svg from its JSON. Two panels: the
// many-samples job's best wall clock per engine (forklm in Node and in the page beside llama.cpp's server and wllama),
// and single-stream decode in tokens per second. Registered in bench/charts.ts.
import { barChart, svgDocument } from './svg.js';

export interface PeersJson {
  date: string;
  job: string;
  machine: { cpu: string; cores: number };
  quick?: boolean;
  best_ms: Record<string, number | null>;
  decode_tok_s: Record<string, number | null>;
  other_load?: number | null;
  load_average_1m?: number[];
}

const LABELS: Record<string, string> = {
  forklm_node_eab: 'forklm EAB\nNode, llvmpipe',
  forklm_node_fork_at_0: 'forklm fork-at-0\nNode, llvmpipe',
  llama_server_1_thread: 'llama.cpp server\nn = 16, 1 thread',
  llama_server_2_threads: 'llama.cpp server\nn = 16, 2 threads',
  forklm_page_eab: 'forklm EAB\nChromium page',
  forklm_page_fork_at_0: 'forklm fork-at-0\nChromium page',
  wllama_page: 'wllama 3.13\nChromium page',
  forklm_node: 'forklm\nNode, llvmpipe',
  forklm_page: 'forklm\nChromium page',
  node_llama_cpp_1_thread: 'node-llama-cpp\n1 thread',
  wllama: 'wllama\nChromium page',
};

const color = (k: string): string => (k.startsWith('forklm') ? '#2ca02c' : k.startsWith('wllama') ? '#9467bd' : '#1f77b4');

export function peersChart(j: PeersJson): string {
  const W = 1000;
  const panel = (y: number, title: string, label: string, rec: Record<string, number | null>) => {
    const keys = Object.keys(rec).filter((k) => rec[k] !== null);
    const max = Math.max(1, ...keys.map((k) => rec[k]!));
    return barChart(
      { x: 0, y, width: W, height: 380 },
      {
        title,
        categories: keys.map((k) => LABELS[k] ?? k),
        // One group per colour family, so the legend says which bars are forklm.
        groups: ['forklm', 'llama.cpp (native)', 'wllama (WebAssembly)'].map((name, gi) => ({
          name,
          color: ['#2ca02c', '#1f77b4', '#9467bd'][gi],
          values: keys.map((k) => (color(k) === ['#2ca02c', '#1f77b4', '#9467bd'][gi] ? rec[k] : null)),
        })),
        y: { label, min: 0, max: 1.12 * max },
      },
    );
  };
  const top = panel(0, `The many-samples job: ${j.job}`, 'ms (best)', j.best_ms);
  const bottom = panel(380, 'Single-stream decode, stories260K', 'tokens / s', j.decode_tok_s);
  const load = typeof j.other_load === 'number' ? `${Math.round(j.other_load * 100)}%` : '?';
  const la = j.load_average_1m ? `, load average ${j.load_average_1m.join(' -> ')}` : '';
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  const cap = `${j.machine.cpu}, ${j.machine.cores} cores, no GPU. ${j.date.slice(0, 10)}. CPU used by other processes: ${load}${la}.${quick}`;
  return svgDocument(W, 782, [top, bottom], cap);
}
