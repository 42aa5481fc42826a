// `forklm generate`: one path (greedy/sample) streamed to the terminal, or a branching run (eab) shown as a tree.
import { runEab, type EabEvent, type EabResult } from '../branch/eab.js';
import { EAB_DEFAULTS } from '../branch/eab_params.js';
import { runPeaks } from '../branch/peaks.js';
import { PEAKS_DEFAULTS } from '../branch/peaks_params.js';
import type { Engine } from '../engine.js';
import { loadEngine } from '../engine_load.js';
import { InvalidArgumentError } from '../errors.js';
import type { ProgressCallback } from '../io/source.js';
import { generate } from '../generate.js';
import { decodeContinuation, StreamDecoder } from '../tokenizer/stream_decoder.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { defineCommand, type CliContext } from './args.js';
import { renderEabTree, renderPeaks } from './tree_text.js';
import { tokenText } from '../api/token_text.js';
import { WEIGHTS_FLAG } from './weights_flag.js';

/** Each token's own text (OpenAI's logprobs convention: "bytes:\\xe2" for a piece of a character); null without a tokenizer. */
const tokenTexts = (tok: Tokenizer | null, ids: readonly number[]): string[] | null => (tok ? ids.map((id) => tokenText(tok, id).token) : null);

const MODES = ['sample', 'greedy', 'eab', 'peaks'] as const;

export const generateFlags = {
  mode: { type: 'string', choices: MODES, default: 'sample', description: 'greedy, sample (greedy at temperature 0), eab (entropy-adaptive branching) or peaks (confidence-peak prefix branching)' },
  model: { type: 'string', default: 'stories260K', placeholder: 'name|path|url', description: 'Model name, HF folder, .gguf or llama2.c .bin' },
  weights: WEIGHTS_FLAG,
  prompt: { type: 'string', default: '', description: 'The prompt (empty: start from BOS). Text such as "<s>" or "</s>" in it stays text' },
  parseSpecial: { type: 'boolean', description: 'Turn special-token text in --prompt ("<s>", "</s>", "<|im_start|>") into those tokens (off: it stays text, so a prompt cannot end the sequence or forge a turn)' },
  promptIds: { type: 'string', placeholder: 'id,id,...', description: 'The prompt as exact token ids, comma-separated (BOS included if wanted), instead of --prompt: for checks, and for text tokenized elsewhere; works without a tokenizer' },
  maxNewTokens: { type: 'integer', min: 1, description: `Tokens to generate per path at most (default 64; peaks ${PEAKS_DEFAULTS.max_new_tokens})` },
  temperature: { type: 'number', min: 0, description: `Sampling temperature (default 1; peaks ${PEAKS_DEFAULTS.temperature}). 0 = greedy everywhere: one token per step, eab never branches and --num-samples N returns N copies of the greedy sample` },
  topP: { type: 'number', default: 1, min: 0, max: 1, description: 'Nucleus mass (1 = off)' },
  seed: { type: 'integer', default: 0, description: 'Random seed; a path\'s stream follows from it and the path\'s lineage (root index; parent, fork position, sibling index) only, so the same seed replays the same run on any engine' },
  entropyThreshold: { type: 'number', default: EAB_DEFAULTS.entropy_threshold, min: 0, max: 1, description: 'eab: branch where H / ln V exceeds this, H the entropy of the sampling distribution (after temperature and top-p: what siblings are drawn from; 0 at temperature 0)' },
  branchFactor: { type: 'integer', default: EAB_DEFAULTS.branch_factor, min: 2, description: 'eab: children per branch point' },
  maxPaths: { type: 'integer', default: EAB_DEFAULTS.max_paths, min: 1, description: 'eab: most live paths' },
  numSamples: { type: 'integer', min: 1, description: 'eab: exactly this many samples (exact-N mode; at temperature 0, N copies of the greedy sample)' },
  minPathProb: { type: 'number', default: EAB_DEFAULTS.min_path_prob, min: 0, max: 1, description: 'eab: prune paths less probable than this' },
  initialTraces: { type: 'integer', min: 1, description: `peaks: traces generated from the prompt (default ${PEAKS_DEFAULTS.initial_traces})` },
  maxTraces: { type: 'integer', min: 1, description: `peaks: total trace budget (default ${PEAKS_DEFAULTS.max_traces})` },
  confidenceThreshold: { type: 'number', description: `peaks: windowed DeepConf confidence a peak must reach (default ${PEAKS_DEFAULTS.confidence_threshold})` },
  peakWindow: { type: 'integer', min: 1, description: `peaks: tokens averaged into a peak's confidence (default ${PEAKS_DEFAULTS.peak_window})` },
  minPeakDistance: { type: 'integer', min: 1, description: `peaks: fewest tokens between two peaks (default ${PEAKS_DEFAULTS.min_peak_distance})` },
  peaksPerTrace: { type: 'integer', min: 1, description: `peaks: peaks branched per trace (default ${PEAKS_DEFAULTS.peaks_per_trace})` },
  branchesPerPeak: { type: 'integer', min: 1, description: `peaks: new traces from each chosen peak (default ${PEAKS_DEFAULTS.branches_per_peak})` },
  maxDepth: { type: 'integer', min: 1, description: `peaks: how often a branch may branch again (default ${PEAKS_DEFAULTS.max_depth})` },
  earlyStop: { type: 'boolean', description: 'peaks: DeepConf online early stopping of low-confidence traces' },
  json: { type: 'boolean', description: 'Print one JSON document instead of text' },
} as const;

/** A one-line progress bar on stderr for downloads and large reads (small local files finish before it shows). */
function progressBar(ctx: CliContext): ProgressCallback {
  let last = -1;
  let phase: string | undefined;
  return ({ loaded, total, phase: p }) => {
    if (!total || total < 4 << 20) return;
    const pct = Math.floor((100 * loaded) / total);
    if (pct === last && p === phase) return;
    last = pct;
    phase = p;
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    const what = p === 'upload' ? 'weights to GPU' : 'loading model';
    ctx.stderr(`\r${what} [${bar}] ${pct}% of ${(total / 2 ** 20).toFixed(1)} MiB${pct === 100 ? '\n' : ''}`);
  };
}

/** "1, 403,407" -> [1, 403, 407]; InvalidArgumentError naming the first entry that is not a token id. */
export function parsePromptIds(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.every((p) => p === '')) throw new InvalidArgumentError('--prompt-ids is empty; give comma-separated token ids, e.g. --prompt-ids 1,403,407.');
  return parts.map((p, i) => {
    if (!/^\d+$/.test(p) || !Number.isSafeInteger(Number(p))) {
      throw new InvalidArgumentError(`--prompt-ids entry ${i + 1} is ${JSON.stringify(p)}, not a token id; give comma-separated non-negative integers, e.g. --prompt-ids 1,403,407.`);
    }
    return Number(p);
  });
}

function encodePrompt(tokenizer: Tokenizer | null, vocabSize: number, f: { prompt: string; promptIds?: string; parseSpecial?: boolean }): number[] {
  if (f.promptIds !== undefined) {
    if (f.prompt !== '') throw new InvalidArgumentError('Give either --prompt or --prompt-ids, not both.');
    const ids = parsePromptIds(f.promptIds);
    const bad = ids.find((id) => id >= vocabSize);
    if (bad !== undefined) throw new InvalidArgumentError(`--prompt-ids: token id ${bad} is outside the vocabulary (0..${vocabSize - 1}).`);
    return ids;
  }
  if (!tokenizer) throw new InvalidArgumentError('This model has no tokenizer forklm can use; give the prompt as token ids with --prompt-ids, or a model with tokenizer.json, a GGUF vocabulary or tokenizer.bin.');
  return tokenizer.encode(f.prompt, { parseSpecial: f.parseSpecial ?? false });
}

/** Text of ids, or the ids themselves ("[5 9 2]") without a tokenizer. */
function decoderOf(tok: Tokenizer | null): (ids: number[]) => string {
  return tok ? (ids) => tok.decode(ids) : (ids) => `[${ids.join(' ')}]`;
}

async function runSingle(engine: Engine, prompt: number[], f: { mode: string; maxNewTokens: number; temperature: number; topP: number; seed: number; json: boolean }, ctx: CliContext): Promise<number> {
  const tok = engine.tokenizer;
  const stream = tok ? new StreamDecoder(tok, { context: prompt }) : null;
  const r = await generate(engine, prompt, {
    maxNewTokens: f.maxNewTokens,
    temperature: f.mode === 'greedy' ? 0 : f.temperature,
    topP: f.topP,
    seed: f.seed,
    onToken: f.json ? undefined : (t) => ctx.stdout(stream ? stream.push(t) : `${t} `),
  });
  const textTokens = r.finishReason === 'eos' ? r.tokens.slice(0, -1) : r.tokens;
  if (f.json) {
    ctx.stdout(
      JSON.stringify({
        text: tok ? decodeContinuation(tok, prompt, textTokens) : null,
        tokens: r.tokens,
        token_texts: tokenTexts(tok, r.tokens),
        logprobs: r.logprobs,
        entropies: r.entropies,
        finish_reason: r.finishReason,
        stats: r.stats,
      }) + '\n',
    );
  } else {
    ctx.stdout((stream ? stream.flush() : '') + '\n');
    ctx.stderr(`[${r.stats.generated_tokens} tokens, ${r.stats.tokens_per_s.toFixed(1)} tokens/s, ${r.finishReason}]\n`);
  }
  return 0;
}

function printEab(result: EabResult, tok: Tokenizer | null, ctx: CliContext): void {
  const s = result.stats;
  ctx.stdout(renderEabTree(result, decoderOf(tok)) + '\n');
  ctx.stdout(`\n${result.samples.length} samples (most probable first):\n`);
  for (const smp of [...result.samples].sort((a, b) => b.log_probability - a.log_probability)) {
    ctx.stdout(`  [path ${smp.path}] logp ${smp.log_probability.toFixed(2)}  branches ${smp.branch_points.length}  ${tok ? JSON.stringify(smp.text) : decoderOf(null)(smp.tokens)}\n`);
  }
  ctx.stdout(
    `\ntoken steps ${s.token_steps} vs naive ${s.naive_token_steps} (${(100 * (1 - s.token_steps_ratio)).toFixed(1)}% fewer); ` +
      `forks ${s.forks}, max live paths ${s.max_live_paths}, pages peak ${s.pages_peak} vs naive ${s.naive_pages}; ` +
      `${s.ms.toFixed(0)} ms, ${s.tokens_per_s.toFixed(1)} tokens/s\n`,
  );
}

export const generateCommand = defineCommand({
  summary: 'Generate text: one path (greedy, sample) or many paths (eab: entropy-adaptive branching; peaks: confidence-peak prefix branching)',
  details:
    'Examples:\n  forklm generate --mode greedy --prompt "Once upon a time"\n  forklm generate --mode greedy --prompt-ids 1,403,407 --json\n  forklm generate --mode eab --max-paths 8 --json\n' +
    '  forklm generate --mode peaks --initial-traces 4 --max-traces 16',
  flags: generateFlags,
  async run({ flags: f }, ctx) {
    if (f.promptIds !== undefined) encodePrompt(null, Infinity, f); // a usage error fails before the model loads
    const engine = await loadEngine(f.model, { maxSamples: Math.max(64, f.numSamples ?? 0, f.maxPaths), weights: f.weights, onProgress: progressBar(ctx), requireTokenizer: f.promptIds === undefined });
    try {
      const prompt = encodePrompt(engine.tokenizer, engine.config.vocabSize, f);
      if (f.mode === 'peaks') {
        const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
        const result = await runPeaks(engine, prompt, {
          ...defined({
            max_new_tokens: f.maxNewTokens,
            temperature: f.temperature,
            initial_traces: f.initialTraces,
            max_traces: f.maxTraces,
            confidence_threshold: f.confidenceThreshold,
            peak_window: f.peakWindow,
            min_peak_distance: f.minPeakDistance,
            peaks_per_trace: f.peaksPerTrace,
            branches_per_peak: f.branchesPerPeak,
            max_depth: f.maxDepth,
          }),
          top_p: f.topP,
          seed: f.seed,
          early_stop: f.earlyStop,
        });
        const traces = result.traces.map((t) => ({ ...t, token_texts: tokenTexts(engine.tokenizer, t.token_ids) }));
        ctx.stdout(f.json ? JSON.stringify({ traces, stats: result.stats }) + '\n' : renderPeaks(result) + '\n');
        return 0;
      }
      const single = { ...f, maxNewTokens: f.maxNewTokens ?? 64, temperature: f.temperature ?? 1 };
      if (f.mode !== 'eab') return await runSingle(engine, prompt, single, ctx);
      const onEvent = f.json ? undefined : (e: EabEvent) => e.type === 'fork' && ctx.stderr('.');
      const result = await runEab(
        engine,
        prompt,
        {
          max_new_tokens: single.maxNewTokens,
          entropy_threshold: f.entropyThreshold,
          branch_factor: f.branchFactor,
          max_paths: f.maxPaths,
          num_samples: f.numSamples ?? null,
          min_path_prob: f.minPathProb,
          temperature: single.temperature,
          top_p: f.topP,
          seed: f.seed,
        },
        onEvent,
      );
      if (f.json) {
        const samples = result.samples.map((smp) => ({ ...smp, token_texts: tokenTexts(engine.tokenizer, smp.tokens) }));
        ctx.stdout(JSON.stringify({ samples, tree: result.tree, forks: result.forks, design: result.design, stats: result.stats }) + '\n');
      }
      else {
        ctx.stderr('\n');
        printEab(result, engine.tokenizer, ctx);
      }
      return 0;
    } finally {
      engine.destroy();
    }
  },
});
