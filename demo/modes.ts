// The generation modes the page offers, each an event stream in the tree's event shape (tree.ts) whose return value is
// the run's samples and stats. Greedy and sample drive one engine path directly; EAB is streamEab as it is; peaks is
// streamPeaks with its trace names mapped to numbers and its branch events to forks.
import { EAB_DEFAULTS } from '../src/branch/eab_params.js';
import { streamEab } from '../src/branch/eab.js';
import { streamPeaks, type PeaksStopReason } from '../src/branch/peaks.js';
import { PEAKS_DEFAULTS } from '../src/branch/peaks_params.js';
import type { Engine } from '../src/engine.js';
import { CancelledError } from '../src/errors.js';
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
type StreamFn = (engine: Engine, prompt: readonly number[], params: Params, signal?: AbortSignal) => ModeStream;

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

const naivePages = (engine: Engine, prompt: number, lengths: number[]) =>
  lengths.reduce((a, n) => a + Math.ceil((prompt + n) / engine.model.pageSize), 0);

/** One path, advanced step by step: greedy (temperature 0) or plain sampling. */
async function* onePath(engine: Engine, prompt: readonly number[], p: Params, signal?: AbortSignal): ModeStream {
  const max = Number(p.max_new_tokens);
  const t0 = performance.now();
  const rows0 = engine.stats.rows;
  const steps0 = engine.stats.steps;
  engine.resetPeak();
  const id = engine.createPath(prompt, { temperature: Number(p.temperature), topP: Number(p.top_p), seed: Number(p.seed) }, { reserve: max });
  const eos = new Set(engine.config.eosTokenIds);
  const tokens: number[] = [];
  let logProb = 0;
  let finish: EndReason = 'stopped';
  try {
    while (tokens.length < max) {
      if (signal?.aborted) throw new CancelledError();
      const step = await engine.step();
      if (!step) break;
      const r = step.results.find((x) => x.pathId === id);
      if (!r) continue; // a prompt chunk that did not reach the last prompt token yet
      const s = r.stats;
      tokens.push(r.token);
      logProb += s.sampledLogprobs[0];
      yield { type: 'token', path: id, token: r.token, position: tokens.length - 1, entropy: s.normEntropy, logprob: s.sampledLogprobs[0], confidence: s.confidence };
      if (eos.has(r.token)) {
        finish = 'eos';
        break;
      }
    }
    if (finish !== 'eos' && tokens.length >= max) finish = 'length';
    yield { type: 'finish', path: id, reason: finish };
  } finally {
    engine.free(id);
  }
  const ms = performance.now() - t0;
  const text = engine.tokenizer?.decode(finish === 'eos' ? tokens.slice(0, -1) : tokens) ?? '';
  return {
    samples: [{ path: id, text, tokens, log_probability: logProb, finish_reason: finish }],
    stats: {
      token_steps: engine.stats.rows - rows0,
      naive_token_steps: prompt.length + tokens.length,
      pages_peak: engine.stats.pagesPeak,
      naive_pages: naivePages(engine, prompt.length, [tokens.length]),
      forks: 0,
      pruned: 0,
      samples: 1,
      steps: engine.stats.steps - steps0,
      ms,
      tokens_per_s: ms > 0 ? (tokens.length / ms) * 1000 : 0,
    },
  };
}

async function* eab(engine: Engine, prompt: readonly number[], params: Params, signal?: AbortSignal): ModeStream {
  const { samples, stats } = yield* streamEab(engine, prompt, { ...(params as object), signal });
  return { samples, stats };
}

const PEAKS_END: Record<PeaksStopReason, EndReason> = { eos: 'eos', length: 'length', low_confidence: 'stopped', pool: 'pruned' };

async function* peaks(engine: Engine, prompt: readonly number[], params: Params, signal?: AbortSignal): ModeStream {
  const ids = new Map<string, number>();
  const id = (trace: string) => {
    if (!ids.has(trace)) ids.set(trace, ids.size);
    return ids.get(trace)!;
  };
  const gen = streamPeaks(engine, prompt, { ...(params as object), signal });
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
