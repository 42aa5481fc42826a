// The OpenAI-style API on stories260K: choices against the engine's own generate() (an independent path through the
// same sessions), streaming against non-streaming, stop strings against a cut of the unstopped text, logprobs against
// the engine's token_stats and a host computation of the sampling distribution, seeds, chat templates, branching and
// errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatCompletionChunk, Completion, CompletionChunk } from '../../src/api/types.js';
import { runEab } from '../../src/branch/eab.js';
import { Engine } from '../../src/engine.js';
import { ContextOverflowError, InvalidArgumentError, NoChatTemplateError } from '../../src/errors.js';
import { generate } from '../../src/generate.js';
import type { LoadedModel } from '../../src/model/load.js';
import { decodeContinuation } from '../../src/tokenizer/stream_decoder.js';
import { gpuFor } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';

let loaded: LoadedModel;
let engine: Engine;
beforeAll(async () => {
  loaded = await loadStories('hf');
  engine = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages: 512, modelName: 'stories260K' });
});
afterAll(() => engine.destroy());

const PROMPT = 'Once upon a time, there was a little girl named Lily. She liked to play outside with her dog.';
const TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('completions and chat on stories260K', () => {
  it('n = 4: choice 0 is generate() with the same seed, the others differ, usage counts every token', async () => {
    const tok = engine.tokenizer!;
    const ids = tok.encode(PROMPT);
    const r = await engine.completions.create({ prompt: PROMPT, n: 4, max_tokens: 24, seed: 7, temperature: 0.9 });
    const g = await generate(engine, ids, { maxNewTokens: 24, seed: 7, temperature: 0.9 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    const text0 = decodeContinuation(tok, ids, g.finishReason === 'eos' ? g.tokens.slice(0, -1) : g.tokens);
    expect(r.choices[0].text).toBe(text0);
    expect(r.choices[0].finish_reason).toBe(g.finishReason === 'eos' ? 'stop' : 'length');
    expect(new Set(r.choices.map((c) => c.text)).size).toBe(4);
    expect(r.usage.prompt_tokens).toBe(ids.length);
    expect(r.usage.total_tokens).toBe(r.usage.prompt_tokens + r.usage.completion_tokens);
    expect(r.usage.completion_tokens).toBeLessThanOrEqual(4 * 24);
    expect(r.usage.completion_tokens).toBeGreaterThanOrEqual(r.choices.filter((c) => c.finish_reason === 'length').length * 24);
    // The same request again: the prompt's full pages come from the prefix cache, and the seed replays every choice.
    const again = await engine.completions.create({ prompt: PROMPT, n: 4, max_tokens: 24, seed: 7, temperature: 0.9 });
    expect(again.choices.map((c) => c.text)).toEqual(r.choices.map((c) => c.text));
    const pageSize = engine.info.pageSize;
    // Full pages only, and never the last prompt token (its logits pick the first new token).
    expect(ids.length).toBeGreaterThan(pageSize + 1);
    expect(again.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor((ids.length - 1) / pageSize) * pageSize);
    const other = await engine.completions.create({ prompt: PROMPT, n: 4, max_tokens: 24, seed: 8, temperature: 0.9 });
    expect(other.choices.map((c) => c.text)).not.toEqual(r.choices.map((c) => c.text));
    expect(engine.pagesInUse).toBe(0);
  });

  it('a stream with n = 4 interleaves choices by index and adds up to the same texts', async () => {
    const body = { prompt: PROMPT, n: 4, max_tokens: 20, seed: 3, temperature: 1 };
    const whole = await engine.completions.create(body);
    const chunks: CompletionChunk[] = await drain(await engine.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }));
    const texts = ['', '', '', ''];
    const finishes: (string | null)[][] = [[], [], [], []];
    for (const c of chunks.slice(0, -1)) {
      expect(c.choices.length).toBe(1);
      texts[c.choices[0].index] += c.choices[0].text;
      finishes[c.choices[0].index].push(c.choices[0].finish_reason);
    }
    expect(texts).toEqual(whole.choices.map((c) => c.text));
    for (let i = 0; i < 4; i++) expect(finishes[i].filter((f) => f !== null)).toEqual([whole.choices[i].finish_reason]);
    // Chunks of different choices interleave (they advance in the same steps).
    const order = chunks.slice(0, -1).map((c) => c.choices[0].index);
    expect(order.slice(0, 8)).not.toEqual([...order.slice(0, 8)].sort());
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  });

  it('stop strings that span tokens cut the text exactly, streamed or not', async () => {
    const tok = engine.tokenizer!;
    const base = await engine.completions.create({ prompt: PROMPT, max_tokens: 40, temperature: 0, logprobs: 0 });
    const { tokens, text_offset } = base.choices[0].logprobs!;
    // A stop string from the end of token 5 into token 6: it spans a token boundary.
    const at = text_offset[6];
    const stop = base.choices[0].text.slice(at - 2, at + 2);
    expect(stop.length).toBe(4);
    expect(tokens[5].length + tokens[6].length).toBeGreaterThan(2);
    const cut = base.choices[0].text.slice(0, base.choices[0].text.indexOf(stop));
    const r = await engine.completions.create({ prompt: PROMPT, max_tokens: 40, temperature: 0, stop: ['zzz', stop] });
    expect(r.choices[0].text).toBe(cut);
    expect(r.choices[0].finish_reason).toBe('stop');
    const chunks = await drain(await engine.completions.create({ prompt: PROMPT, max_tokens: 40, temperature: 0, stop, stream: true }));
    let streamed = '';
    for (const c of chunks) {
      streamed += c.choices[0].text;
      expect(cut.startsWith(streamed)).toBe(true); // never text that the final answer does not have
    }
    expect(streamed).toBe(cut);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('stop');
    void tok;
  });

  it('logprobs: 20 alternatives with text and bytes, raw equal to the engine\'s, processed from the sampling distribution', async () => {
    const tok = engine.tokenizer!;
    const ids = tok.encode(PROMPT);
    const messages = [{ role: 'user', content: PROMPT }];
    const raw = await engine.completions.create({ prompt: ids, max_tokens: 12, seed: 5, temperature: 0.7, top_p: 0.9, logprobs: 20 });
    const g = await generate(engine, ids, { maxNewTokens: 12, seed: 5, temperature: 0.7, topP: 0.9 });
    const lp = raw.choices[0].logprobs!;
    const n = g.finishReason === 'eos' ? g.tokens.length - 1 : g.tokens.length;
    expect(lp.token_logprobs).toEqual(g.logprobs.slice(0, n).map((x) => Math.max(x, -9999)));
    expect(lp.tokens.join('')).toBe(raw.choices[0].text);
    lp.top_logprobs!.forEach((top, t) => {
      const values = Object.values(top);
      expect(values.length).toBeGreaterThanOrEqual(19); // 20 unless two tokens share a text
      // The drawn token is in the nucleus of top-p 0.9, so the best alternative is at least as likely.
      expect(Math.max(...values)).toBeGreaterThanOrEqual(lp.token_logprobs[t]);
      expect(Math.max(...values)).toBeLessThanOrEqual(0);
    });
    void messages;
    const processed = await engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      chat_template: TEMPLATE,
      max_completion_tokens: 12,
      seed: 5,
      temperature: 0.7,
      top_p: 0.9,
      logprobs: true,
      top_logprobs: 20,
      logprobs_mode: 'processed_logprobs',
    });
    const rawChat = await engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      chat_template: TEMPLATE,
      max_completion_tokens: 12,
      seed: 5,
      temperature: 0.7,
      top_p: 0.9,
      logprobs: true,
      top_logprobs: 20,
    });
    expect(processed.choices[0].message.content).toBe(rawChat.choices[0].message.content);
    const P = processed.choices[0].logprobs!.content;
    const R = rawChat.choices[0].logprobs!.content;
    expect(P.length).toBe(R.length);
    let checked = 0;
    for (let t = 0; t < P.length; t++) {
      // Host reference: softmax(raw / T) renormalised on the nucleus, the smallest prefix of the sorted list whose
      // tempered mass reaches top_p of the total. Only the nucleus size k depends on the total Z, which the top 20
      // bound: Z lies in [sum of top-20 weights, that + tail], the tail's tempered weight being at most its raw mass
      // times exp(l_20 (1/T - 1)). Where both ends give the same k inside the list, the reference is exact.
      const T = 0.7;
      const rawTop = R[t].top_logprobs.map((x) => x.logprob);
      const w = rawTop.map((l) => Math.exp(l / T));
      const zLo = w.reduce((a, x) => a + x, 0);
      const tailRaw = Math.max(0, 1 - rawTop.reduce((a, l) => a + Math.exp(l), 0));
      const zHi = zLo + tailRaw * Math.exp(rawTop[rawTop.length - 1] * (1 / T - 1));
      const nucleus = (z: number) => {
        let m = 0;
        let k = 0;
        while (k < w.length && m < 0.9 * z) m += w[k++];
        return m >= 0.9 * z ? k : -1;
      };
      const k = nucleus(zLo);
      expect(R[t].bytes).toEqual([...new TextEncoder().encode(R[t].token)]);
      if (k < 0 || nucleus(zHi) !== k) continue; // the top 20 do not settle the nucleus here: no exact reference
      checked++;
      const mass = w.slice(0, k).reduce((a, x) => a + x, 0);
      for (let i = 0; i < P[t].top_logprobs.length; i++) {
        const want = i < k ? Math.log(w[i] / mass) : -9999;
        // f32 logits and log-sum-exp in the kernel: 1e-4 absolute on log-probabilities of order -10 (<= 0.01% rel).
        if (i < k) expect(Math.abs(P[t].top_logprobs[i].logprob - want)).toBeLessThan(1e-4);
        else expect(P[t].top_logprobs[i].logprob).toBe(-9999);
      }
    }
    expect(checked).toBeGreaterThan(P.length / 3);
  });

  it('chat: messages through a template; a model without one is a NoChatTemplateError', async () => {
    const tok = engine.tokenizer!;
    const messages = [
      { role: 'system', content: 'You tell stories.' },
      { role: 'user', content: 'A story about a cat.' },
    ];
    const r = await engine.chat.completions.create({ messages, chat_template: TEMPLATE, max_completion_tokens: 16, temperature: 0 });
    const prompt = tok.encode('system: You tell stories.\nuser: A story about a cat.\nassistant:');
    const plain = await engine.completions.create({ prompt, max_tokens: 16, temperature: 0 });
    expect(r.choices[0].message).toEqual({ role: 'assistant', content: plain.choices[0].text, refusal: null });
    expect(r.usage.prompt_tokens).toBe(prompt.length);
    await expect(engine.chat.completions.create({ messages, max_tokens: 4 })).rejects.toBeInstanceOf(NoChatTemplateError);
    const chunks: ChatCompletionChunk[] = await drain(
      await engine.chat.completions.create({ messages, chat_template: TEMPLATE, max_completion_tokens: 16, temperature: 0, stream: true, n: 2 }),
    );
    const first = new Map<number, ChatCompletionChunk['choices'][0]['delta']>();
    let content = '';
    for (const c of chunks) {
      const ch = c.choices[0];
      if (!first.has(ch.index)) first.set(ch.index, ch.delta);
      if (ch.index === 1) content += ch.delta.content ?? '';
    }
    expect([...first.values()].every((d) => d.role === 'assistant')).toBe(true);
    expect(content).toBe(plain.choices[0].text); // greedy: every choice is the same text
  });

  it('concurrent requests share steps and each equals its solo run', async () => {
    const bodies = [
      { prompt: PROMPT, n: 2, max_tokens: 16, seed: 1 },
      { prompt: 'The dog ran', n: 3, max_tokens: 12, seed: 2, logprobs: 3 },
      { prompt: 'Tom had a red ball', max_tokens: 20, seed: 3, stop: '.' },
    ];
    const solo: Completion[] = [];
    let soloSteps = 0;
    for (const b of bodies) {
      const s0 = engine.stats.steps;
      solo.push(await engine.completions.create(b));
      soloSteps += engine.stats.steps - s0;
    }
    const s0 = engine.stats.steps;
    const together = await Promise.all(bodies.map((b) => engine.completions.create(b)));
    const steps = engine.stats.steps - s0;
    together.forEach((r, i) => expect(JSON.stringify(r.choices)).toBe(JSON.stringify(solo[i].choices)));
    expect(steps).toBeLessThan(soloSteps);
  });

  it('branching: eab choices are runEab\'s samples with the tree in `forklm`; peaks choices are traces', async () => {
    const tok = engine.tokenizer!;
    const ids = tok.encode(PROMPT);
    const params = { entropy_threshold: 0.3, branch_factor: 3, max_paths: 8 };
    const r = await engine.completions.create({ prompt: PROMPT, n: 5, max_tokens: 24, seed: 4, branching: { mode: 'eab', ...params } });
    const direct = await runEab(engine, ids, { ...params, num_samples: 5, max_new_tokens: 24, seed: 4, temperature: 1, top_p: 1 });
    expect(r.choices.map((c) => c.text)).toEqual(direct.samples.map((s) => s.text));
    expect(r.forklm!.mode).toBe('eab');
    expect(r.forklm!.tree).toEqual(direct.tree);
    expect(r.forklm!.choices.map((c) => c.log_probability)).toEqual(direct.samples.map((s) => s.log_probability));
    expect(r.usage.completion_tokens).toBe(direct.samples.reduce((a, s) => a + s.tokens.length, 0));
    const p = await engine.completions.create({ prompt: PROMPT, n: 6, max_tokens: 24, seed: 4, branching: { mode: 'peaks', initial_traces: 2 } });
    expect(p.choices.length).toBeGreaterThanOrEqual(2);
    expect(p.choices.length).toBeLessThanOrEqual(6);
    expect((p.forklm!.stats as { traces: number }).traces).toBe(p.choices.length);
  });

  it('branching streamed: each EAB choice arrives whole as its sample finishes, equal to the non-streamed response', async () => {
    // stories260K rarely ends a story within the context, so every path would end at max_tokens in the same step. With
    // '.' as its end-of-sequence token the samples are sentences, ending at different steps.
    const tok = engine.tokenizer!;
    const dot = tok.encode('Lily.').at(-1)!;
    const w = loaded.modelWeights;
    const sentences = await Engine.fromWeights({ ...w, spec: { ...w.spec, eosTokenIds: [dot] } }, tok, { gpu: engine.gpu, kvPages: 128 });
    try {
      await streamedAsFinished(sentences);
    } finally {
      sentences.destroy();
    }
  });

  async function streamedAsFinished(engine: Engine): Promise<void> {
    const body = { prompt: 'Once upon a time', max_tokens: 64, seed: 3, branching: { mode: 'eab', entropy_threshold: 0.3, branch_factor: 2, max_paths: 4 } } as const;
    const whole = await engine.completions.create(body);
    const s0 = engine.stats.steps;
    const stream = await engine.completions.create({ ...body, stream: true });
    const arrived: { index: number; text: string; finish: string | null; step: number }[] = [];
    let last: CompletionChunk | null = null;
    for await (const c of stream) {
      for (const ch of c.choices) arrived.push({ index: ch.index, text: ch.text, finish: ch.finish_reason, step: engine.stats.steps - s0 });
      if (c.choices.length === 0) last = c;
    }
    // One chunk per choice, whole, in the order of the non-streamed response.
    expect(arrived.map((a) => a.index)).toEqual(whole.choices.map((c) => c.index));
    expect(arrived.map((a) => a.text)).toEqual(whole.choices.map((c) => c.text));
    expect(arrived.map((a) => a.finish)).toEqual(whole.choices.map((c) => c.finish_reason));
    expect(whole.choices.some((c) => c.finish_reason === 'stop'), 'some sample ended at its EOS before max_tokens').toBe(true);
    // Sent as the samples finished, not all at the end: at different steps, the first before the run's last step.
    const steps = (last!.forklm!.stats as { steps: number }).steps;
    expect(new Set(arrived.map((a) => a.step)).size).toBeGreaterThan(1);
    expect(arrived[0].step).toBeLessThan(steps);
    expect(last!.forklm!.choices).toEqual(whole.forklm!.choices);
    expect(last!.forklm!.tree).toEqual(whole.forklm!.tree);
  }

  it('bad requests are typed errors naming the field, and leave no pages', async () => {
    const param = async (p: Promise<unknown>) => {
      const err = await p.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      return (err as InvalidArgumentError).param;
    };
    expect(await param(engine.completions.create({ prompt: PROMPT, n: 0 }))).toBe('n');
    expect(await param(engine.completions.create({ prompt: PROMPT, logprobs: 21 }))).toBe('logprobs');
    expect(
      await param(engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], chat_template: TEMPLATE, logprobs: true, top_logprobs: 21 })),
    ).toBe('top_logprobs');
    expect(await param(engine.completions.create({ prompt: PROMPT, temperature: -1 }))).toBe('temperature');
    expect(await param(engine.completions.create({ prompt: PROMPT, stop: ['a', 'b', 'c', 'd', 'e'] }))).toBe('stop');
    expect(await param(engine.completions.create({ prompt: [] }))).toBe('prompt');
    expect(await param(engine.completions.create({ prompt: PROMPT, presence_penalty: 1 } as never))).toBe('presence_penalty');
    const long = 'Once upon a time '.repeat(200);
    await expect(engine.completions.create({ prompt: long })).rejects.toBeInstanceOf(ContextOverflowError);
    const ctl = new AbortController();
    const stream = await engine.completions.create({ prompt: PROMPT, n: 4, max_tokens: 200, stream: true }, { signal: ctl.signal });
    let seen = 0;
    for await (const _ of stream) if (++seen === 3) break; // the consumer leaves: the request is cancelled
    const stepsAtBreak = engine.stats.steps;
    // The producer frees the pages once its in-flight step returns: a few ms, but a fixed 200 ms wait would fail where a
    // loaded machine stretches that step. Wait for it, up to 10 s; and at most that one step ran after the break (the
    // request's 200 tokens would take ~200 steps, after which an uncancelled request frees its pages too).
    for (let t = 0; t < 500 && engine.pagesInUse > 0; t++) await new Promise((r) => setTimeout(r, 20));
    expect(engine.pagesInUse).toBe(0);
    expect(engine.stats.steps - stepsAtBreak).toBeLessThanOrEqual(1);
  });
});
