// The branching extension: `branching: { mode: 'eab' | 'peaks', ...parameters }` in a completions or chat request.
// The choices are the run's samples (EAB) or traces (confidence peaks), in the order they finished; the response's
// `forklm` field carries each choice's own record (probability, importance weight, lineage, branch points, ...), the
// tree and the run's token accounting. Streamed, an EAB choice is sent whole as soon as its sample finishes (its
// tokens rebuilt from the run's token and fork events); peaks traces, whose order is only known at the end, are sent
// then, and so are the records, in the final chunk.
//
// Request fields map onto the controllers' parameters: max_tokens -> max_new_tokens, temperature, top_p, seed; n, when
// given, asks EAB for exactly n samples (num_samples) and peaks for n traces (max_traces). Stop strings cut each
// choice's text afterwards (the branching runs themselves end at EOS or max_tokens). Logprobs are each token's
// log-probability under the model, without alternatives (the controllers keep no top-k per token).
import { streamEab, type EabResult, type EabSample } from '../branch/eab.js';
import { runPeaks, type PeaksTrace } from '../branch/peaks.js';
import { CancelledError } from '../errors.js';
import { decodeContinuation } from '../tokenizer/stream_decoder.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { ChoiceDelta, ChoicesTotals } from './choices.js';
import type { ApiHost } from './host.js';
import type { NormalizedRequest } from './request.js';
import { tokenText } from './token_text.js';
import type { BranchingInfo, FinishReason, TokenLogprob } from './types.js';

interface Picked {
  text: string;
  /** Generated ids without a final EOS, and their logprobs. */
  ids: number[];
  logprobs: number[];
  /** All generated ids (an EOS included). */
  generated: number;
  reason: string;
  record: Record<string, unknown>;
}

/** Cuts `text` before the first stop string; reports whether one was found. */
function cut(text: string, stops: readonly string[]): { text: string; stopped: boolean } {
  let first = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  return first < 0 ? { text, stopped: false } : { text: text.slice(0, first), stopped: true };
}

/** One choice's delta, whole: its text cut at the first stop string, logprobs and offsets when asked for. */
function choiceDelta(tokenizer: Tokenizer, req: NormalizedRequest, index: number, p: Pick<Picked, 'text' | 'ids' | 'logprobs' | 'reason'>): ChoiceDelta {
  const c = cut(p.text, req.stop);
  const finish: FinishReason = c.stopped || p.reason !== 'length' ? 'stop' : 'length';
  const logprobs: TokenLogprob[] =
    req.topLogprobs === null ? [] : p.ids.map((id, i) => ({ ...tokenText(tokenizer, id), logprob: p.logprobs[i], top_logprobs: [] }));
  const offsets: number[] = [];
  if (req.topLogprobs !== null) {
    let at = 0;
    for (const l of logprobs) {
      offsets.push(at);
      at += l.token.length;
    }
  }
  return { index, text: c.text, logprobs, textOffsets: offsets, finish };
}

/**
 * Runs EAB and yields each sample as a choice when it finishes (index = finish order, as in the result). A path's
 * tokens are rebuilt from the events: a fork's children inherit the parent's tokens before the fork position (their
 * own token there came in their token event, just before the fork event).
 */
async function* eabChoices(
  host: ApiHost,
  tokenizer: Tokenizer,
  req: NormalizedRequest,
  params: Record<string, unknown>,
  eos: ReadonlySet<number>,
  signal: AbortSignal | undefined,
): AsyncGenerator<ChoiceDelta[], { result: EabResult; sent: number }> {
  const tokens = new Map<number, number[]>();
  const logprobs = new Map<number, number[]>();
  const own = <T>(m: Map<number, T[]>, path: number) => {
    let a = m.get(path);
    if (!a) m.set(path, (a = []));
    return a;
  };
  const sentPaths: number[] = [];
  const sentTokens: string[] = [];
  const gen = streamEab(host, req.promptIds, { ...params, signal });
  for (;;) {
    const r = await gen.next();
    if (r.done) {
      // The result's samples are the finished paths in finish order: the ones sent must be its first ones.
      r.value.samples.slice(0, sentPaths.length).forEach((s, i) => {
        if (s.path !== sentPaths[i] || s.tokens.join() !== sentTokens[i])
          throw new Error(`internal: streamed EAB choice ${i} (path ${sentPaths[i]}) differs from the result's sample (path ${s.path})`);
      });
      return { result: r.value, sent: sentPaths.length };
    }
    const e = r.value;
    if (e.type === 'token') {
      own(tokens, e.path)[e.position] = e.token;
      own(logprobs, e.path)[e.position] = e.logprob;
    } else if (e.type === 'fork') {
      for (const c of e.children) {
        tokens.set(c, [...tokens.get(e.parent)!.slice(0, e.position), tokens.get(c)![e.position]]);
        logprobs.set(c, [...logprobs.get(e.parent)!.slice(0, e.position), logprobs.get(c)![e.position]]);
      }
    } else if (e.type === 'finish' && e.reason !== 'pruned') {
      const all = tokens.get(e.path) ?? [];
      const ended = all.length > 0 && eos.has(all[all.length - 1]);
      const ids = ended ? all.slice(0, -1) : all;
      const text = decodeContinuation(tokenizer, req.promptIds, ids);
      yield [choiceDelta(tokenizer, req, sentPaths.length, { text, ids, logprobs: (logprobs.get(e.path) ?? []).slice(0, ids.length), reason: e.reason })];
      sentPaths.push(e.path);
      sentTokens.push(all.join());
      tokens.delete(e.path);
      logprobs.delete(e.path);
    }
  }
}

export async function* runBranching(
  host: ApiHost,
  tokenizer: Tokenizer,
  req: NormalizedRequest,
  nGiven: boolean,
  signal?: AbortSignal,
): AsyncGenerator<ChoiceDelta[], ChoicesTotals & { branching: BranchingInfo }> {
  const { mode, ...fields } = req.branching!;
  const eos = new Set(host.info.eosTokenIds);
  const common = { max_new_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, seed: req.seed };
  let picked: Picked[];
  let info: BranchingInfo;
  let cached: number;
  /** Choices already sent (EAB, as their samples finished). */
  let sent = 0;
  if (mode === 'eab') {
    const params = { ...fields, ...common, ...(nGiven ? { num_samples: req.n } : {}) };
    const run = yield* eabChoices(host, tokenizer, req, params, eos, signal);
    const r = run.result;
    sent = run.sent;
    const strip = ({ text: _t, tokens: _k, token_logprobs: _l, entropies: _e, ...rest }: EabSample) => rest;
    picked = r.samples.map((s) => {
      const ended = s.tokens.length > 0 && eos.has(s.tokens[s.tokens.length - 1]);
      const ids = ended ? s.tokens.slice(0, -1) : s.tokens;
      return { text: s.text, ids, logprobs: s.token_logprobs.slice(0, ids.length), generated: s.tokens.length, reason: s.finish_reason, record: strip(s) };
    });
    info = { mode, choices: picked.map((p) => p.record), tree: r.tree, stats: { ...r.stats }, params: { ...r.params } };
    cached = r.stats.reused_prompt_tokens;
  } else {
    const params = { ...fields, ...common, ...(nGiven ? { max_traces: req.n } : {}) };
    const r = await runPeaks(host, req.promptIds, { ...params, signal });
    const strip = ({ text: _t, token_ids: _k, token_logprobs: _l, confs: _c, ...rest }: PeaksTrace) => rest;
    picked = r.traces.map((t) => {
      const ended = t.token_ids.length > 0 && eos.has(t.token_ids[t.token_ids.length - 1]);
      const ids = ended ? t.token_ids.slice(0, -1) : t.token_ids;
      return { text: t.text, ids, logprobs: t.token_logprobs.slice(0, ids.length), generated: t.num_tokens, reason: t.stop_reason, record: strip(t) };
    });
    info = { mode, choices: picked.map((p) => p.record), stats: { ...r.stats }, params: { ...r.params } };
    cached = r.stats.reused_prompt_tokens;
  }
  if (signal?.aborted) throw new CancelledError();
  // The rest: every peaks trace; for EAB, copies of a greedy exact-N sample (one path, N choices).
  const deltas = picked.slice(sent).map((p, i) => choiceDelta(tokenizer, req, sent + i, p));
  if (deltas.length > 0) yield deltas;
  return { completionTokens: picked.reduce((a, p) => a + p.generated, 0), cachedTokens: cached, branching: info };
}
