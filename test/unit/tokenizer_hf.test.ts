// The tokenizer.json adapter: ids exactly as @huggingface/tokenizers gives them, BOS policy from tokenizer_config,
// decode that skips special tokens, merges byte-fallback pieces into UTF-8 and drops the dummy-prefix space only
// after a BOS (run.c's rule), and the published greedy text of stories260K decoded back exactly.
import { sharedModelsDir, referenceGreedyText, TOKENIZER_TEXTS } from '../ref/shared_models.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { createHfTokenizer } from '../../src/tokenizer/hf.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { InvalidArgumentError, ModelFormatError, ModelNotFoundError } from '../../src/errors.js';
import { testSeed } from '../ref/random.js';

const DIR = `${sharedModelsDir()}/stories260K`;
const tokenizerJson = JSON.parse(readFileSync(`${DIR}/hf/tokenizer.json`, 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(`${DIR}/hf/tokenizer_config.json`, 'utf8'));
const expectedText = referenceGreedyText();
const hfLib = new HfLibTokenizer(tokenizerJson, tokenizerConfig);
const tok = createHfTokenizer(tokenizerJson, tokenizerConfig);

const TEXTS = TOKENIZER_TEXTS;

describe('HF tokenizer.json adapter (stories260K)', () => {
  it('reads vocabulary size and special ids from the files', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.bosToken).toBe('<s>');
    expect(tok.piece(13)).toBe('<0x0A>');
  });

  it.each(TEXTS)('encodes %j like the library, BOS per add_bos_token', (text) => {
    const ref = hfLib.encode(text).ids;
    expect(ref[0]).toBe(1);
    expect(tok.encode(text)).toEqual(ref);
    expect(tok.encode(text, { addBos: false })).toEqual(ref.slice(1));
    expect(tok.encode(text, { addBos: true })).toEqual(ref);
  });

  it.each(TEXTS)('round-trips %j', (text) => {
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode(tok.encode(text, { addBos: false }))).toBe(text.length > 0 ? ` ${text}` : '');
  });

  it('round-trips random text and agrees with the library decode after BOS', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        const ids = tok.encode(text);
        expect(tok.decode(ids)).toBe(text);
        if (ids.length > 1) expect(tok.decode(ids)).toBe(hfLib.decode(ids, { skip_special_tokens: true }));
      }),
      { numRuns: 200, seed: testSeed() },
    );
  });

  it('decodes the published greedy text exactly', () => {
    const ids = tok.encode(expectedText);
    expect(ids.length).toBe(201); // BOS + the 200 greedy steps
    expect(tok.decode(ids)).toBe(expectedText);
    // A continuation decoded on its own keeps its leading space (the library's Strip decoder would drop it).
    expect(tok.decode(ids.slice(1))).toBe(` ${expectedText}`);
    const k = 57;
    expect(tok.decode(ids.slice(0, k)) + tok.decode(ids.slice(k))).toBe(expectedText);
  });

  it('skips special tokens, merges byte-fallback pieces, splits at every BOS', () => {
    const emoji = tok.encode('😀', { addBos: false }); // ▁ then four byte pieces
    expect(emoji.length).toBe(5);
    expect(tok.decode(emoji)).toBe(' 😀');
    expect(tok.decode([0, 2, ...emoji, 2])).toBe(' 😀');
    expect(tok.decode(emoji.slice(0, 3))).toBe(' \uFFFD'); // an unfinished sequence is one U+FFFD
    const hi = tok.encode('hi', { addBos: false });
    expect(tok.decode([...hi, 1, ...hi])).toBe(' hihi');
    expect(tok.decode([1, 2])).toBe('');
    expect(tok.decode([])).toBe('');
  });

  it('follows add_bos_token and falls back to the post-processor without a config', () => {
    const noBos = createHfTokenizer(tokenizerJson, { ...tokenizerConfig, add_bos_token: false });
    expect(noBos.encode('hi')).toEqual(tok.encode('hi', { addBos: false }));
    const bare = createHfTokenizer(tokenizerJson);
    expect(bare.bosTokenId).toBe(1); // the TemplateProcessing post-processor adds <s>
    expect(bare.encode('hi')).toEqual(tok.encode('hi'));
    expect(bare.eosTokenIds).toEqual([]);
    const extra = createHfTokenizer(tokenizerJson, tokenizerConfig, { eosTokenIds: [2, 7] });
    expect(extra.eosTokenIds).toEqual([2, 7]);
  });

  it('rejects out-of-vocabulary ids and malformed input with typed errors', () => {
    expect(() => tok.decode([512])).toThrow(InvalidArgumentError);
    expect(() => tok.decode([-1])).toThrow(InvalidArgumentError);
    expect(() => tok.decode([1.5])).toThrow(InvalidArgumentError);
    expect(() => createHfTokenizer('{"model":{}}')).toThrow(ModelFormatError);
    expect(() => createHfTokenizer({ version: '1.0' })).toThrow(ModelFormatError);
    expect(() => createHfTokenizer({ ...tokenizerJson, model: { type: 'NoSuchModel' } })).toThrow(ModelFormatError);
    expect(() => createHfTokenizer(tokenizerJson, 'config')).toThrow(ModelFormatError);
  });

  it('loadTokenizer prefers tokenizer.json and says what is missing', () => {
    const loaded = loadTokenizer({ tokenizerJson, tokenizerConfig, llama2cTokenizer: new Uint8Array(3) });
    expect(loaded.source).toBe('tokenizer.json');
    expect(loaded.chatTemplate).toBeNull();
    expect(loaded.bosToken).toBe('<s>');
    expect(loaded.tokenizer.encode('hi')).toEqual(tok.encode('hi'));
    const bin = loadTokenizer({ llama2cTokenizer: readFileSync(`${DIR}/llama2c/tok512.bin`), vocabSize: 512 });
    expect(bin.source).toBe('tokenizer.bin');
    expect(bin.tokenizer.encode(expectedText)).toEqual(tok.encode(expectedText));
    expect(() => loadTokenizer({ name: 'x' })).toThrow(ModelNotFoundError);
  });
});
