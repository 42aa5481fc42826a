// The generation modes the page offers, each an event stream in the tree's event shape (tree.ts) whose return value is
// the run's samples and stats, run by the page's worker engine. Greedy and sample are EAB held to one unbranched path;
// EAB is streamEab as it is; peaks is streamPeaks with its trace names mapped to numbers and its branch events to forks.
import { EAB_DEFAULTS } from '../src/branch/eab_params.js';
import type { PeaksStopReason } from '../src/branch/peaks.js';
import { PEAKS_DEFAULTS } from '../src/branch/peaks_params.js';
import type { WorkerEngine } from '../src/worker/client.js';
import type { EndReason, TreeEvent } from './tree.js';
import type { ColorBy } from './tree_svg.js';

export type Mode = 'greedy' | 'sample' | 'eab' | 'peaks';
export type ParamValue = number | string | boolean | null;
export type Params = Record<string, ParamValue>;

export interface ModeSample {
  path: number;
  text: string;
  tokens: number[];
  log_probability: number;
  finish_reason: string;
}

export interface ModeStats {
  token_steps: number;
  /** What independent sampling of the same samples would compute, by the mode's own definition. */
  naive_token_steps: number;
  pages_peak: number;
  naive_pages: number;
  forks: number;
  pruned: number;
  samples: number;
  steps: number;
  ms: number;
  tokens_per_s: number;
}

export interface ModeOutcome {
  samples: ModeSample[];
  stats: ModeStats;
}

export type ModeStream = AsyncGenerator<TreeEvent, ModeOutcome>;
/** What the modes use of an engine: the branching streams and the page size (a WorkerEngine has them). */
export type ModeEngine = Pick<WorkerEngine, 'streamEab' | 'streamPeaks' | 'info'>;
type StreamFn = (engine: ModeEngine, prompt: readonly number[], params: Params, signal?: AbortSignal) => ModeStream;

export interface ModeSpec {
  label: string;
  /** Parameters with their defaults (the seed documents'); the form is built from these. */
  defaults: Params;
  /** Values a string parameter may take. */
  choices?: Record<string, string[]>;
  /** What the mode reports per token, for colouring the tree; the first is the default. */
  measures: ColorBy[];
  help: string;
  stream: StreamFn;
}

const naivePages = (engine: ModeEngine, prompt: number, lengths: number[]) =>
  lengths.reduce((a, n) => a + Math.ceil((prompt + n) / engine.info.pageSize), 0);

/**
 * One path: EAB that never branches (threshold 1, one path), so greedy and plain sampling stream the same per-token
 * records (entropy, log-probability, confidence) and stats as the branching modes.
 */
function onePath(engine: ModeEngine, prompt: readonly number[], p: Params, signal?: AbortSignal): ModeStream {
  return eab(engine, prompt, { max_new_tokens: p.max_new_tokens, temperature: p.temperature, top_p: p.top_p, seed: p.seed, entropy_threshold: 1, max_paths: 1, branch_factor: 2 }, signal);
}

async function* eab(engine: ModeEngine, prompt: readonly number[], params: Params, signal?: AbortSignal): ModeStream {
  const { samples, stats } = yield* engine.streamEab(prompt, { ...(params as object), signal });
  return { samples, stats };
}

const PEAKS_END: Record<PeaksStopReason, EndReason> = { eos: 'eos', length: 'length', low_confidence: 'stopped', pool: 'pruned' };

async function* peaks(engine: ModeEngine, prompt: readonly number[], params: Params, signal?: AbortSignal): ModeStream {
  const ids = new Map<string, number>();
  const id = (trace: string) => {
    if (!ids.has(trace)) ids.set(trace, ids.size);
    return ids.get(trace)!;
  };
  const gen = engine.streamPeaks(prompt, { ...(params as object), signal });
  for (;;) {
    const r = await gen.next();
    if (r.done) {
      const { traces, stats } = r.value;
      return {
        samples: traces.map((t) => ({ path: id(t.trace_id), text: t.text, tokens: t.token_ids, log_probability: t.log_probability, finish_reason: t.stop_reason })),
        stats: {
          token_steps: stats.tokens_computed,
          naive_token_steps: stats.tokens_independent,
          pages_peak: stats.pages_peak,
          naive_pages: naivePages(engine, prompt.length, traces.map((t) => t.num_tokens)),
          forks: stats.forks,
          pruned: traces.filter((t) => PEAKS_END[t.stop_reason] !== 'eos' && PEAKS_END[t.stop_reason] !== 'length').length,
          samples: traces.length,
          steps: stats.steps,
          ms: stats.ms,
          tokens_per_s: stats.tokens_per_s,
        },
      };
    }
    const e = r.value;
    if (e.type === 'token') yield { type: 'token', path: id(e.trace), token: e.token, position: e.position, confidence: e.confidence };
    else if (e.type === 'branch')
      yield { type: 'fork', parent: id(e.parent), children: e.children.map(id), position: e.branch_point, confidence: e.confidence };
    else if (e.type === 'finish') yield { type: 'finish', path: id(e.trace), reason: PEAKS_END[e.reason] };
  }
}

export const MODES: Record<Mode, ModeSpec> = {
  greedy: {
    label: 'greedy',
    defaults: { max_new_tokens: EAB_DEFAULTS.max_new_tokens },
    measures: ['entropy', 'probability', 'confidence'],
    help: 'One path, always the most likely token.',
    stream: (e, p, params, signal) => onePath(e, p, { ...params, temperature: 0, top_p: 1, seed: 0 }, signal),
  },
  sample: {
    label: 'sample',
    defaults: { max_new_tokens: EAB_DEFAULTS.max_new_tokens, temperature: 1, top_p: 1, seed: 0 },
    measures: ['entropy', 'probability', 'confidence'],
    help: 'One path, sampled with temperature and nucleus (top-p).',
    stream: onePath,
  },
  eab: {
    label: 'EAB',
    defaults: { ...(EAB_DEFAULTS as unknown as Params) },
    choices: { prune_policy: ['keep_most_probable', 'none'] },
    measures: ['entropy', 'probability', 'confidence'],
    help: 'Entropy-adaptive branching: paths fork where the entropy of the sampling distribution (after temperature and top-p) exceeds the threshold; forks share KV pages.',
    stream: eab,
  },
  peaks: {
    label: 'peaks',
    defaults: { ...(PEAKS_DEFAULTS as unknown as Params) },
    choices: { schedule: ['rounds', 'eager'] },
    measures: ['confidence'],
    help: 'Confidence peaks: sample traces, then branch new traces from the positions where they were most confident (prefix forks).',
    stream: peaks,
  },
};
