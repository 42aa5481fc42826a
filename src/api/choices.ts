// The n choices of a plain (non-branching) request, advanced together in one session of the engine.
//
// Choice 0 is the request's root path (random stream: seed, root 0). Once the prompt is computed, choices 1..n-1 are
// forked from it at the end of the prompt (fork keep = prompt length, sibling i): they share every prompt page, the
// last prompt token is recomputed for each (one row), and each draws its first token from its own stream, so the n
// choices are independent samples, the prompt is computed once, and a seed replays all of them.
//
// Per choice, generated ids go through a StreamDecoder (text that is final) and a StopMatcher (text that cannot be
// the beginning of a stop string), so what is emitted is never taken back.
import type { SessionSource } from '../branch/engine_api.js';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import { StreamDecoder } from '../tokenizer/stream_decoder.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { tokenLogprob } from './logprobs.js';
import type { NormalizedRequest } from './request.js';
import { StopMatcher } from './stop.js';
import type { FinishReason, TokenLogprob } from './types.js';

/** What one choice gained in one step. */
export interface ChoiceDelta {
  index: number;
  /** Text that became final in this step (possibly ''). */
  text: string;
  /** Logprobs of the tokens sampled in this step (an EOS is not reported), when asked for. */
  logprobs: TokenLogprob[];
  /** Offset in the choice's text (before any stop cut) where each of those tokens starts. */
  textOffsets: number[];
  finish: FinishReason | null;
}

export interface ChoicesTotals {
  /** Tokens generated over all choices (an EOS that ended one included). */
  completionTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
}

interface Choice {
  index: number;
  path: number;
  decoder: StreamDecoder;
  stop: StopMatcher;
  generated: number;
  /** Characters the decoder produced so far (text offsets). */
  decoded: number;
  finish: FinishReason | null;
}

/** Runs the choices of `req`; yields each step's deltas (choices with nothing new left out), returns the totals. */
export async function* runChoices(
  source: SessionSource,
  tokenizer: Tokenizer,
  eosTokenIds: readonly number[],
  req: NormalizedRequest,
  signal?: AbortSignal,
): AsyncGenerator<ChoiceDelta[], ChoicesTotals> {
  const eos = new Set(eosTokenIds);
  const prompt = req.promptIds;
  const session = source.session();
  try {
    const sampling = { temperature: req.temperature, topP: req.topP, seed: req.seed };
    const root = session.createPath(prompt, sampling, { reserve: req.maxTokens, root: 0 });
    const choices: Choice[] = [];
    const byPath = new Map<number, Choice>();
    const add = (index: number, path: number): void => {
      const c: Choice = {
        index,
        path,
        decoder: new StreamDecoder(tokenizer, { context: prompt }),
        stop: new StopMatcher(req.stop),
        generated: 0,
        decoded: 0,
        finish: null,
      };
      choices.push(c);
      byPath.set(path, c);
    };
    add(0, root);
    let forked = req.n === 1;

    const accept = (c: Choice, token: number, delta: ChoiceDelta, stats: Parameters<typeof tokenLogprob>[1]): void => {
      c.generated++;
      const isEos = eos.has(token);
      let piece = '';
      if (!isEos) {
        if (req.topLogprobs !== null) {
          delta.logprobs.push(tokenLogprob(tokenizer, stats, req.topLogprobs, req.logprobsMode, req.temperature));
          delta.textOffsets.push(c.decoded);
        }
        piece = c.decoder.push(token);
      }
      const last = isEos || c.generated >= req.maxTokens;
      if (last) piece += c.decoder.flush();
      c.decoded += piece.length;
      delta.text += c.stop.push(piece);
      if (c.stop.stopped) c.finish = 'stop';
      else if (last) {
        delta.text += c.stop.flush();
        c.finish = isEos ? 'stop' : 'length';
      }
      if (c.finish !== null) {
        delta.finish = c.finish;
        session.release(c.path);
      }
    };

    while (choices.some((c) => c.finish === null)) {
      if (signal?.aborted) throw new CancelledError();
      const step = await session.step();
      if (signal?.aborted) throw new CancelledError();
      if (!step) throw new InvalidArgumentError('The request\'s paths were freed before it finished.');
      const deltas = new Map<number, ChoiceDelta>();
      for (const r of step.results) {
        const c = byPath.get(r.pathId);
        if (!c || c.finish !== null) continue;
        if (!forked) {
          // The prompt is computed: the other choices start from it (before the root may finish and free it).
          for (let i = 1; i < req.n; i++) add(i, session.fork(root, { keep: prompt.length, sibling: i }));
          forked = true;
        }
        let d = deltas.get(c.index);
        if (!d) deltas.set(c.index, (d = { index: c.index, text: '', logprobs: [], textOffsets: [], finish: null }));
        accept(c, r.token, d, r.stats);
      }
      const out = [...deltas.values()].filter((d) => d.text !== '' || d.logprobs.length > 0 || d.finish !== null);
      if (out.length > 0) yield out.sort((a, b) => a.index - b.index);
    }
    return {
      completionTokens: choices.reduce((a, c) => a + c.generated, 0),
      cachedTokens: session.counters().reusedPromptTokens,
    };
  } finally {
    session.close();
  }
}
