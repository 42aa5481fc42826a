// Streaming decode: for random id sequences (heavy in byte pieces, BOS/EOS/<unk>) the pushed text concatenated with
// flush() equals decode(all ids) for all three tokenizers, emitted text is always a prefix of the final text, and
// nothing is emitted while a multi-byte character is unfinished.
import { sharedModelsDir, referenceGreedyText } from '../ref/shared_models.js';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { gguf } from '@huggingface/gguf';
import { decodeContinuation, StreamDecoder } from '../../src/tokenizer/stream_decoder.js';
import { createHfTokenizer } from '../../src/tokenizer/hf.js';
import { createLlama2cTokenizer } from '../../src/tokenizer/llama2c.js';
import { createGgufTokenizer } from '../../src/tokenizer/gguf_vocab.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { mulberry32, testSeed } from '../ref/random.js';

const DIR = `${sharedModelsDir()}/stories260K`;
const expectedText = referenceGreedyText();
const tokenizers: Record<string, Tokenizer> = {
  hf: createHfTokenizer(
    JSON.parse(readFileSync(`${DIR}/hf/tokenizer.json`, 'utf8')),
    JSON.parse(readFileSync(`${DIR}/hf/tokenizer_config.json`, 'utf8')),
  ),
  llama2c: createLlama2cTokenizer(readFileSync(`${DIR}/llama2c/tok512.bin`), { vocabSize: 512 }),
};

beforeAll(async () => {
  const meta = (await gguf(`${DIR}/gguf/stories260K.gguf`, { allowLocalFile: true })).metadata as Record<string, unknown>;
  tokenizers.gguf = createGgufTokenizer(meta);
});

function randomIds(rand: () => number, len: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < len; i++) {
    const r = rand();
    // 10% specials, 50% byte pieces (3..258, often unfinished or invalid UTF-8), 40% anything.
    ids.push(r < 0.1 ? Math.floor(rand() * 3) : r < 0.6 ? 3 + Math.floor(rand() * 256) : Math.floor(rand() * 512));
  }
  return ids;
}

describe.each(['hf', 'llama2c', 'gguf'])('StreamDecoder over the %s tokenizer', (name) => {
  it('equals the full decode on random id sequences, emitting only final text', () => {
    const tok = tokenizers[name];
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (let trial = 0; trial < 150; trial++) {
      const ids = randomIds(rand, Math.floor(rand() * 40));
      const full = tok.decode(ids);
      const s = new StreamDecoder(tok);
      let out = '';
      for (const [i, id] of ids.entries()) {
        out += s.push(id);
        const msg = `seed ${seed}, ids ${JSON.stringify(ids.slice(0, i + 1))}`;
        expect(full.startsWith(out), msg).toBe(true);
        expect(tok.decode(ids.slice(0, i + 1)).startsWith(out), msg).toBe(true);
      }
      out += s.flush();
      expect(out, `seed ${seed}, ids ${JSON.stringify(ids)}`).toBe(full);
      expect(s.flush()).toBe('');
      expect(s.tokens).toEqual(ids);
    }
  });

  it('streams the published greedy text, holding back split characters', () => {
    const tok = tokenizers[name];
    const ids = tok.encode(expectedText);
    const s = new StreamDecoder(tok);
    const chunks = ids.map((id) => s.push(id));
    expect(chunks.join('') + s.flush()).toBe(expectedText);
    expect(chunks.filter((c) => c.length > 0).length).toBeGreaterThan(150); // text flows token by token

    const emoji = tok.encode('Lily 😀!', { addBos: false }); // ... ▁ <0xF0> <0x9F> <0x98> <0x80> !
    const e = new StreamDecoder(tok);
    const parts = emoji.map((id) => e.push(id));
    const firstByte = emoji.length - 5;
    expect(parts.slice(firstByte, firstByte + 3)).toEqual(['', '', '']);
    expect(parts[firstByte + 3]).toBe('😀');
    expect(parts.join('') + e.flush()).toBe(' Lily 😀!');
  });

  it('continues after a prompt exactly as decode(prompt + generated) does', () => {
    const tok = tokenizers[name];
    const ids = tok.encode(expectedText);
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (const k of [1, 2, 3, 9, 50, 1 + Math.floor(rand() * 199)]) {
      const s = new StreamDecoder(tok, { context: ids.slice(0, k) });
      const out = s.pushAll(ids.slice(k)) + s.flush();
      expect(out, `seed ${seed}, split at ${k}`).toBe(expectedText.slice(tok.decode(ids.slice(0, k)).length));
      expect(s.tokens).toEqual(ids.slice(k));
      // Random continuations of a real prompt: same rule.
      const gen = randomIds(rand, 20);
      const s2 = new StreamDecoder(tok, { context: ids.slice(0, k) });
      const full = tok.decode([...ids.slice(0, k), ...gen]);
      expect(s2.pushAll(gen) + s2.flush(), `seed ${seed}, gen ${JSON.stringify(gen)}`).toBe(
        full.slice(tok.decode(ids.slice(0, k)).length),
      );
      // decodeContinuation decodes it in two calls, not one per id: the same text.
      expect(decodeContinuation(tok, ids.slice(0, k), gen), `seed ${seed}, gen ${JSON.stringify(gen)}`).toBe(
        full.slice(tok.decode(ids.slice(0, k)).length),
      );
      // A context ending in an unfinished UTF-8 sequence (a lone lead byte), continued with random ids.
      const odd = [...ids.slice(0, k), 3 + 0xe2];
      const s3 = new StreamDecoder(tok, { context: odd });
      expect(decodeContinuation(tok, odd, gen), `seed ${seed}, lead byte, gen ${JSON.stringify(gen)}`).toBe(s3.pushAll(gen) + s3.flush());
    }
  });
});
