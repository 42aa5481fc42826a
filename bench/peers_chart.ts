// The chart of the peers benchmark (bench/peers.ts): bench/results/peers.svg from its JSON. Panels: the many-samples
// job's best wall clock per engine (forklm in Node and in the page beside llama.cpp's server and wllama), single-stream
// decode in tokens per second, and (when the run has it) the job on the SmolLM2-135M shape. Registered in
// bench/charts.ts.
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
  forklm_swiftshader_eab: 'forklm EAB\nNode, SwiftShader',
  forklm_swiftshader_fork_at_0: 'forklm fork-at-0\nNode, SwiftShader',
  forklm_swiftshader: 'forklm\nNode, SwiftShader',
  shape_forklm_eab: 'forklm EAB\nNode, llvmpipe',
  shape_forklm_fork_at_0: 'forklm fork-at-0\nNode, llvmpipe',
  shape_llama_server_1_thread: 'llama.cpp server\nn = 16, 1 thread',
  shape_llama_server_2_threads: 'llama.cpp server\nn = 16, 2 threads',
};

const color = (key: string): string => {
  const k = key.replace(/^shape_/, '');
  return k.startsWith('forklm') ? '#2ca02c' : k.startsWith('wllama') ? '#9467bd' : '#1f77b4';
};

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
  const part = (shape: boolean) => Object.fromEntries(Object.entries(j.best_ms).filter(([k]) => k.startsWith('shape_') === shape));
  const top = panel(0, `The many-samples job: ${j.job}`, 'ms (best)', part(false));
  const bottom = panel(380, 'Single-stream decode, stories260K', 'tokens / s', j.decode_tok_s);
  const shape = part(true);
  const hasShape = Object.values(shape).some((v) => v !== null);
  const third = hasShape ? [panel(760, 'The same job on the SmolLM2-135M shape (random weights; llama.cpp on the same weights, F32 GGUF)', 'ms (one run)', shape)] : [];
  const load = typeof j.other_load === 'number' ? `${Math.round(j.other_load * 100)}%` : '?';
  const la = j.load_average_1m ? `, load average ${j.load_average_1m.join(' -> ')}` : '';
  const quick = j.quick ? ' QUICK RUN (numbers meaningless).' : '';
  const cap = `${j.machine.cpu}, ${j.machine.cores} cores, no GPU. ${j.date.slice(0, 10)}. CPU used by other processes: ${load}${la}.${quick}`;
  return svgDocument(W, hasShape ? 1162 : 782, [top, bottom, ...third], cap);
}
