// The runs of `forklm generate` over any SessionSource (the local GPU engine, or a server through RemoteEngine), and
// their output: one JSON document (--json) or text for a terminal. generate.ts picks the source; remote_run.ts adds
// what a server run prints besides (its counters, texts decoded by the server).
import type { SessionSource } from '../branch/engine_api.js';
import { runEab, type EabEvent, type EabResult } from '../branch/eab.js';
import { runPeaks, type PeaksResult } from '../branch/peaks.js';
import type { PeaksSchedule } from '../branch/peaks_params.js';
import { InvalidArgumentError } from '../errors.js';
import { generate, type GenerateResult } from '../generate.js';
import { decodeContinuation, StreamDecoder } from '../tokenizer/stream_decoder.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { tokenText } from '../api/token_text.js';
import type { CliContext } from './args.js';
import { renderEabTree, renderPeaks } from './tree_text.js';

export const MODES = ['sample', 'greedy', 'eab', 'peaks'] as const;

/** The flags a run reads (generate.ts declares them). */
export interface RunFlags {
  mode: (typeof MODES)[number];
  maxNewTokens?: number;
  temperature?: number;
  topP: number;
  seed: number;
  entropyThreshold: number;
  branchFactor: number;
  maxPaths: number;
  numSamples?: number;
  minPathProb: number;
  initialTraces?: number;
  maxTraces?: number;
  confidenceThreshold?: number;
  peakWindow?: number;
  minPeakDistance?: number;
  peaksPerTrace?: number;
  branchesPerPeak?: number;
  maxDepth?: number;
  schedule?: string;
  earlyStop: boolean;
  json: boolean;
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

/** --prompt-ids checked against the vocabulary; InvalidArgumentError when --prompt is given too. */
export function promptFromIds(f: { prompt: string; promptIds: string }, vocabSize: number): number[] {
  if (f.prompt !== '') throw new InvalidArgumentError('Give either --prompt or --prompt-ids, not both.');
  const ids = parsePromptIds(f.promptIds);
  const bad = ids.find((id) => id >= vocabSize);
  if (bad !== undefined) throw new InvalidArgumentError(`--prompt-ids: token id ${bad} is outside the vocabulary (0..${vocabSize - 1}).`);
  return ids;
}

/** A finished run: one path (sample, greedy), an EAB tree, or peaks traces. */
export type RunOutput = { mode: 'single'; result: GenerateResult } | { mode: 'eab'; result: EabResult } | { mode: 'peaks'; result: PeaksResult };

/**
 * Runs the mode of `f` from `prompt`. `live`: how a single path shows on the terminal while it is generated: its text
 * through this tokenizer, its token ids ('ids'), or nothing until the end (null).
 */
export async function runMode(source: SessionSource, prompt: number[], f: RunFlags, ctx: CliContext, live: Tokenizer | 'ids' | null): Promise<RunOutput> {
  if (f.mode === 'peaks') {
    const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    const result = await runPeaks(source, prompt, {
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
        schedule: f.schedule as PeaksSchedule | undefined,
      }),
      top_p: f.topP,
      seed: f.seed,
      early_stop: f.earlyStop,
    });
    return { mode: 'peaks', result };
  }
  const maxNewTokens = f.maxNewTokens ?? 64;
  const temperature = f.temperature ?? 1;
  if (f.mode !== 'eab') {
    const stream = live && live !== 'ids' && !f.json ? new StreamDecoder(live, { context: prompt }) : null;
    const result = await generate(source, prompt, {
      maxNewTokens,
      temperature: f.mode === 'greedy' ? 0 : temperature,
      topP: f.topP,
      seed: f.seed,
      onToken: f.json || !live ? undefined : (t) => ctx.stdout(stream ? stream.push(t) : `${t} `),
    });
    if (stream) ctx.stdout(stream.flush());
    return { mode: 'single', result };
  }
  let dots = false; // a fork prints a dot; an error after dots starts on its own line
  const onEvent = f.json ? undefined : (e: EabEvent) => e.type === 'fork' && ((dots = true), ctx.stderr('.'));
  const result = await runEab(
    source,
    prompt,
    {
      max_new_tokens: maxNewTokens,
      entropy_threshold: f.entropyThreshold,
      branch_factor: f.branchFactor,
      max_paths: f.maxPaths,
      num_samples: f.numSamples ?? null,
      min_path_prob: f.minPathProb,
      temperature,
      top_p: f.topP,
      seed: f.seed,
    },
    onEvent,
  ).catch((e: unknown) => {
    if (dots) ctx.stderr('\n');
    throw e;
  });
  if (!f.json) ctx.stderr('\n');
  return { mode: 'eab', result };
}

/** Each token's own text (OpenAI's logprobs convention: "bytes:\\xe2" for a piece of a character); null without a tokenizer. */
const tokenTexts = (tok: Tokenizer | null, ids: readonly number[]): string[] | null => (tok ? ids.map((id) => tokenText(tok, id).token) : null);

/** Text of ids, or the ids themselves ("[5 9 2]") without a tokenizer. */
function decoderOf(tok: Tokenizer | null): (ids: number[]) => string {
  return tok ? (ids) => tok.decode(ids) : (ids) => `[${ids.join(' ')}]`;
}

/** A single path's text: the tokens after the prompt, a final EOS left out. */
export function singleText(tok: Tokenizer | null, prompt: readonly number[], r: GenerateResult): string | null {
  const textTokens = r.finishReason === 'eos' ? r.tokens.slice(0, -1) : r.tokens;
  return tok ? decodeContinuation(tok, prompt, textTokens) : null;
}

/**
 * Prints a finished run. `tok` decodes token_texts and the terminal's tree; `extra` is merged into the JSON document
 * (a server run's counters); `text`: a single path's text when the caller decoded it (undefined: from `tok`, and on
 * the terminal it was streamed during the run).
 */
export function printRun(out: RunOutput, tok: Tokenizer | null, prompt: readonly number[], f: RunFlags, ctx: CliContext, extra: object = {}, text?: string | null): void {
  if (out.mode === 'peaks') {
    const r = out.result;
    const traces = r.traces.map((t) => ({ ...t, token_texts: tokenTexts(tok, t.token_ids) }));
    ctx.stdout(f.json ? JSON.stringify({ traces, stats: r.stats, params: r.params, ...extra }) + '\n' : renderPeaks(r) + '\n');
    return;
  }
  if (out.mode === 'single') {
    const r = out.result;
    if (f.json) {
      ctx.stdout(
        JSON.stringify({
          text: text !== undefined ? text : singleText(tok, prompt, r),
          tokens: r.tokens,
          token_texts: tokenTexts(tok, r.tokens),
          logprobs: r.logprobs,
          entropies: r.entropies,
          finish_reason: r.finishReason,
          stats: r.stats,
          ...extra,
        }) + '\n',
      );
    } else {
      // Streamed during the run, unless the text comes now (a server run decodes it at the end).
      ctx.stdout((text !== undefined ? (text ?? decoderOf(null)(r.tokens)) : '') + '\n');
      ctx.stderr(`[${r.stats.generated_tokens} tokens, ${r.stats.tokens_per_s.toFixed(1)} tokens/s, ${r.finishReason}]\n`);
    }
    return;
  }
  const r = out.result;
  if (f.json) {
    const samples = r.samples.map((smp) => ({ ...smp, token_texts: tokenTexts(tok, smp.tokens) }));
    ctx.stdout(JSON.stringify({ samples, tree: r.tree, forks: r.forks, design: r.design, stats: r.stats, ...extra }) + '\n');
  } else printEab(r, tok, ctx);
}

function printEab(result: EabResult, tok: Tokenizer | null, ctx: CliContext): void {
  const s = result.stats;
  ctx.stdout(renderEabTree(result, decoderOf(tok)) + '\n');
  ctx.stdout(`\n${result.samples.length} samples (most probable first):\n`);
  for (const smp of [...result.samples].sort((a, b) => b.log_probability - a.log_probability)) {
    ctx.stdout(`  [path ${smp.path}] logp ${smp.log_probability.toFixed(2)}  branches ${smp.branch_points.length}  ${tok ? JSON.stringify(smp.text) : decoderOf(null)(smp.tokens)}\n`);
  }
  // The remote engine has no pages a client can see (naive_pages 0): no page figures then.
  const pages = s.naive_pages > 0 ? `, pages peak ${s.pages_peak} vs naive ${s.naive_pages}` : '';
  ctx.stdout(
    `\ntoken steps ${s.token_steps} vs naive ${s.naive_token_steps} (${(100 * (1 - s.token_steps_ratio)).toFixed(1)}% fewer); ` +
      `forks ${s.forks}, max live paths ${s.max_live_paths}${pages}; ${s.ms.toFixed(0)} ms, ${s.tokens_per_s.toFixed(1)} tokens/s\n`,
  );
}
