// llama2.c tokenizer.bin: ids equal to @huggingface/tokenizers on tokenizer.json, equal to a literal port of run.c's
// quadratic `encode` (including score ties, which the stories260K vocabulary never has), run.c-style decoding of the
// published greedy text, and malformed files that must fail as ModelFormatError without crashing or allocating much.
import { sharedModelsDir, referenceGreedyText, TOKENIZER_TEXTS } from '../ref/shared_models.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { createLlama2cTokenizer, parseLlama2cTokenizer } from '../../src/tokenizer/llama2c.js';
import { ModelFormatError } from '../../src/errors.js';
import { mulberry32, testSeed } from '../ref/random.js';

const DIR = `${sharedModelsDir()}/stories260K`;
const tokBin = new Uint8Array(readFileSync(`${DIR}/llama2c/tok512.bin`));
const hfLib = new HfLibTokenizer(
  JSON.parse(readFileSync(`${DIR}/hf/tokenizer.json`, 'utf8')),
  JSON.parse(readFileSync(`${DIR}/hf/tokenizer_config.json`, 'utf8')),
);
const expectedText = referenceGreedyText();
const tok = createLlama2cTokenizer(tokBin, { vocabSize: 512 });

const TEXTS = TOKENIZER_TEXTS;

/** A literal port of run.c's encode (bos, no eos) over the parsed file: the reference for the heap-based merge. */
function runcEncode(file: ReturnType<typeof parseLlama2cTokenizer>, text: string): number[] {
  const key = (b: Uint8Array): string => String.fromCharCode(...b);
  const vocab = file.pieces.map(key);
  const lookup = new Map<string, number>();
  vocab.forEach((p, i) => {
    if (!lookup.has(p)) lookup.set(p, i);
  });
  const tokens: number[] = [1];
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 0) tokens.push(lookup.get(' ') as number);
  let buf: number[] = [];
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c] & 0xc0) !== 0x80) buf = [];
    buf.push(bytes[c]);
    if (c + 1 < bytes.length && (bytes[c + 1] & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = lookup.get(String.fromCharCode(...buf));
    if (id !== undefined) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]]);
      if (id !== undefined && file.scores[id] > bestScore) {
        bestScore = file.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}

/** Builds a tokenizer.bin: <unk>, BOS, EOS, 256 byte pieces, then `extra` pieces with their scores. */
function buildTokenizerBin(extra: [string, number][]): Uint8Array {
  const pieces: [Uint8Array, number][] = [
    ['<unk>', 0],
    ['\n<s>\n', 0],
    ['\n</s>\n', 0],
  ].map(([p, s]) => [new TextEncoder().encode(p as string), s as number]);
  for (let b = 0; b < 256; b++) pieces.push([new TextEncoder().encode(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), 0]);
  for (const [p, s] of extra) pieces.push([new TextEncoder().encode(p), s]);
  const maxLen = Math.max(...pieces.map(([p]) => p.length));
  const size = 4 + pieces.reduce((n, [p]) => n + 8 + p.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setInt32(0, maxLen, true);
  let o = 4;
  for (const [p, s] of pieces) {
    view.setFloat32(o, s, true);
    view.setInt32(o + 4, p.length, true);
    out.set(p, o + 8);
    o += 8 + p.length;
  }
  return out;
}

const textArb = fc.string({
  unit: fc.oneof(
    fc.constantFrom('a', 'e', 't', 'h', 'o', 'n', ' ', ' ', '\n', '.', ',', '"', "'", '1', 'é', '😀', '日', '\t', 'L', 'y'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 60,
});

describe('llama2.c tokenizer.bin', () => {
  it('parses stories260K tok512.bin', () => {
    const file = parseLlama2cTokenizer(tokBin);
    expect(file.pieces.length).toBe(512);
    expect(file.maxTokenLength).toBe(Math.max(...file.pieces.map((p) => p.length)));
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.piece(13)).toBe('<0x0A>');
  });

  it.each(TEXTS)('gives the ids of @huggingface/tokenizers for %j', (text) => {
    const ref = hfLib.encode(text).ids;
    expect(tok.encode(text)).toEqual(ref);
    expect(tok.encode(text, { addBos: false })).toEqual(hfLib.encode(text, { add_special_tokens: false }).ids);
  });

  it.each(TEXTS)('round-trips %j through decode(encode(x))', (text) => {
    expect(tok.decode(tok.encode(text))).toBe(text);
    // Without BOS the dummy-prefix space stays, as run.c prints it.
    expect(tok.decode(tok.encode(text, { addBos: false }))).toBe(text.length > 0 ? ` ${text}` : '');
  });

  it('matches the HF library, run.c encode and round-trips on random text', () => {
    const file = parseLlama2cTokenizer(tokBin);
    fc.assert(
      fc.property(textArb, (text) => {
        const ids = tok.encode(text);
        expect(ids).toEqual(hfLib.encode(text).ids);
        expect(ids).toEqual(runcEncode(file, text));
        expect(tok.decode(ids)).toBe(text);
      }),
      { numRuns: 300, seed: testSeed() },
    );
  });

  it('breaks score ties leftmost like run.c', () => {
    // Equal scores everywhere: "aaaa" must merge (aa)(aa), "aba" must merge ab first, as run.c's first-best scan does.
    const bin = buildTokenizerBin([
      [' ', 0],
      ['a', 0],
      ['b', 0],
      ['aa', -1],
      ['ab', -1],
      ['ba', -1],
      ['aaa', -1],
      ['aba', -2],
      [' a', -1],
      [' aa', -2],
    ]);
    const t = createLlama2cTokenizer(bin);
    const file = parseLlama2cTokenizer(bin);
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (let trial = 0; trial < 300; trial++) {
      const len = Math.floor(rand() * 12);
      let text = '';
      for (let i = 0; i < len; i++) text += 'ab '[Math.floor(rand() * 3)];
      expect(t.encode(text), `seed ${seed}, text ${JSON.stringify(text)}`).toEqual(runcEncode(file, text));
      expect(t.decode(t.encode(text)), `seed ${seed}`).toBe(text);
    }
  });

  it('decodes the published greedy text like run.c', () => {
    const ids = hfLib.encode(expectedText, { add_special_tokens: false }).ids;
    expect(ids.length).toBe(200); // the 200 greedy steps, one token each
    expect(tok.encode(expectedText)).toEqual([1, ...ids]);
    // run.c prints the piece after BOS without its leading space.
    expect(tok.decode([1, ...ids])).toBe(expectedText);
    let printed = '';
    let prev = 1;
    for (const id of ids) {
      let piece = tok.decode([id]);
      if (prev === 1 && piece.startsWith(' ')) piece = piece.slice(1);
      printed += piece;
      prev = id;
    }
    expect(printed).toBe(expectedText);
    expect(tok.decode(ids)).toBe(` ${expectedText}`);
  });

  it('drops control tokens and restarts the dummy-prefix rule at every BOS', () => {
    const hi = tok.encode('hi', { addBos: false });
    expect(tok.decode([0, 2, ...hi])).toBe(' hi');
    expect(tok.decode([...hi, 1, ...hi, 2])).toBe(' hihi');
    expect(tok.decode([])).toBe('');
  });

  describe('malformed files', () => {
    const expectFormatError = (f: () => unknown): void => {
      expect(f).toThrow(ModelFormatError);
    };

    it('rejects every truncation when the vocabulary size is known', () => {
      for (let n = 0; n < tokBin.length; n++) expectFormatError(() => parseLlama2cTokenizer(tokBin.subarray(0, n), 512));
    });

    it('rejects truncations inside a token when the vocabulary size is unknown', () => {
      // Token boundaries are valid ends of a smaller vocabulary; every other cut is not.
      const validEnds = new Set<number>(); // after 3 or more whole tokens
      const view = new DataView(tokBin.buffer, tokBin.byteOffset);
      for (let o = 4, i = 0; o < tokBin.length; o += 8 + view.getInt32(o + 4, true), i++) if (i >= 3) validEnds.add(o);
      let rejected = 0;
      for (let n = 0; n < tokBin.length; n++) {
        if (validEnds.has(n)) {
          expect(parseLlama2cTokenizer(tokBin.subarray(0, n)).pieces.length).toBeGreaterThanOrEqual(3);
          continue;
        }
        expectFormatError(() => parseLlama2cTokenizer(tokBin.subarray(0, n)));
        rejected++;
      }
      expect(rejected).toBeGreaterThan(tokBin.length - 600);
    });

    it('rejects huge, negative and inconsistent lengths without allocating them', () => {
      const patched = (offset: number, value: number): Uint8Array => {
        const b = tokBin.slice();
        new DataView(b.buffer).setInt32(offset, value, true);
        return b;
      };
      expectFormatError(() => parseLlama2cTokenizer(patched(0, 0x7fffffff)));
      expectFormatError(() => parseLlama2cTokenizer(patched(0, -1)));
      expectFormatError(() => parseLlama2cTokenizer(patched(0, 0)));
      // Token 0's length field sits at offset 8.
      expectFormatError(() => parseLlama2cTokenizer(patched(8, 0x7fffffff)));
      expectFormatError(() => parseLlama2cTokenizer(patched(8, -5)));
      expectFormatError(() => parseLlama2cTokenizer(patched(8, 100))); // beyond max_token_length, inside the file
      const nan = tokBin.slice();
      new DataView(nan.buffer).setFloat32(4, NaN, true);
      expectFormatError(() => parseLlama2cTokenizer(nan));
      expectFormatError(() => parseLlama2cTokenizer(tokBin, 1_000_000_000));
      expectFormatError(() => parseLlama2cTokenizer(tokBin, 511)); // trailing bytes: another model's tokenizer
      expectFormatError(() => parseLlama2cTokenizer(tokBin, 0));
      expectFormatError(() => parseLlama2cTokenizer(new Uint8Array(0)));
    });

    it('either loads or throws ModelFormatError on random corruption, and a loaded one never crashes', () => {
      const seed = testSeed();
      const rand = mulberry32(seed);
      for (let trial = 0; trial < 200; trial++) {
        const b = tokBin.slice();
        const flips = 1 + Math.floor(rand() * 4);
        // Corrupt the header and length fields more often than piece bytes: that is where crashes would come from.
        for (let k = 0; k < flips; k++) b[Math.floor(rand() * (rand() < 0.5 ? 64 : b.length))] = Math.floor(rand() * 256);
        let t: ReturnType<typeof createLlama2cTokenizer> | null = null;
        try {
          t = createLlama2cTokenizer(b);
        } catch (e) {
          expect(e, `seed ${seed}, trial ${trial}`).toBeInstanceOf(ModelFormatError);
        }
        if (t !== null) {
          const ids = t.encode('Once upon a time, 😀');
          expect(ids.every((id) => id >= 0 && id < t.vocabSize), `seed ${seed}`).toBe(true);
          expect(typeof t.decode(ids)).toBe('string');
        }
      }
    });
  });
});
