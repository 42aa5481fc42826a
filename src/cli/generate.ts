// `forklm generate`: one path (greedy/sample) streamed to the terminal, or a branching run (eab, peaks) shown as a tree;
// on the local GPU engine, or on a server engine with --server (remote_run.ts).
import { EAB_DEFAULTS } from '../branch/eab_params.js';
import { PEAKS_DEFAULTS } from '../branch/peaks_params.js';
import { loadEngine } from '../engine_load.js';
import { InvalidArgumentError } from '../errors.js';
import type { ProgressCallback } from '../io/source.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { defineCommand, type CliContext } from './args.js';
import { MODES, printRun, promptFromIds, runMode } from './generate_run.js';
import { runRemote } from './remote_run.js';
import { WEIGHTS_FLAG_UNSET } from './weights_flag.js';

export { parsePromptIds } from './generate_run.js';

export const generateFlags = {
  mode: { type: 'string', choices: MODES, default: 'sample', description: 'greedy, sample (greedy at temperature 0), eab (entropy-adaptive branching) or peaks (confidence-peak prefix branching)' },
  model: { type: 'string', placeholder: 'name|path|url', description: 'Model name, HF folder, .gguf or llama2.c .bin (default stories260K; not with --server, which runs the server\'s model)' },
  weights: WEIGHTS_FLAG_UNSET,
  server: { type: 'string', placeholder: 'url', description: 'Run on a server engine instead (llama.cpp server, vLLM, SGLang), e.g. http://127.0.0.1:8080: the same modes and flags; the server tokenizes the prompt and decodes the texts, and its own counters are printed' },
  serverKind: { type: 'string', choices: ['llama.cpp', 'openai'], placeholder: 'llama.cpp|openai', description: "--server's API: llama.cpp's /completion (default; n_cmpl, cache counters) or OpenAI's /v1/completions (vLLM, SGLang)" },
  timeout: { type: 'number', min: 0.001, placeholder: 'seconds', description: '--server: longest wait for a response, or between two streamed tokens (default 120; a request queued behind busy slots waits too), after which it is retried (3 times, with backoff) or fails' },
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
  schedule: { type: 'string', choices: ['online', 'rounds'], description: `peaks: online branches a peak as soon as its trace passed it; rounds waits for the traces to finish, as the seed did (default ${PEAKS_DEFAULTS.schedule})` },
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

function encodePrompt(tokenizer: Tokenizer | null, vocabSize: number, f: { prompt: string; promptIds?: string; parseSpecial?: boolean }): number[] {
  if (f.promptIds !== undefined) return promptFromIds({ prompt: f.prompt, promptIds: f.promptIds }, vocabSize);
  if (!tokenizer) throw new InvalidArgumentError('This model has no tokenizer forklm can use; give the prompt as token ids with --prompt-ids, or a model with tokenizer.json, a GGUF vocabulary or tokenizer.bin.');
  return tokenizer.encode(f.prompt, { parseSpecial: f.parseSpecial ?? false });
}

export const generateCommand = defineCommand({
  summary: 'Generate text: one path (greedy, sample) or many paths (eab: entropy-adaptive branching; peaks: confidence-peak prefix branching)',
  details:
    'Examples:\n  forklm generate --mode greedy --prompt "Once upon a time"\n  forklm generate --mode greedy --prompt-ids 1,403,407 --json\n  forklm generate --mode eab --max-paths 8 --json\n' +
    '  forklm generate --mode peaks --initial-traces 4 --max-traces 16\n' +
    '  forklm generate --mode eab --server http://127.0.0.1:8080 --json        (llama-server -m model.gguf -np 16 -c 32768)\n' +
    '  forklm generate --mode peaks --server http://127.0.0.1:8000/v1 --server-kind openai   (vLLM, SGLang)',
  flags: generateFlags,
  async run({ flags: f }, ctx) {
    if (f.promptIds !== undefined) promptFromIds({ prompt: f.prompt, promptIds: f.promptIds }, Infinity); // a usage error fails before the model loads
    if (f.server !== undefined) {
      if (f.model !== undefined) throw new InvalidArgumentError('Give either --model or --server: with --server the server\'s model runs (and its tokenizer reads the prompt).');
      if (f.weights !== undefined) throw new InvalidArgumentError('--weights applies to local runs only: with --server the server holds the weights (choose them when you start it).');
      return runRemote(f.server, f, ctx);
    }
    if (f.serverKind !== undefined || f.timeout !== undefined) throw new InvalidArgumentError('--server-kind and --timeout apply to --server runs only; add --server URL.');
    const engine = await loadEngine(f.model ?? 'stories260K', { maxSamples: Math.max(64, f.numSamples ?? 0, f.maxPaths), weights: f.weights ?? 'as-stored', onProgress: progressBar(ctx), requireTokenizer: f.promptIds === undefined });
    try {
      const prompt = encodePrompt(engine.tokenizer, engine.config.vocabSize, f);
      const out = await runMode(engine, prompt, f, ctx, engine.tokenizer ?? 'ids');
      printRun(out, engine.tokenizer, prompt, f, ctx);
      return 0;
    } finally {
      engine.destroy();
    }
  },
});
