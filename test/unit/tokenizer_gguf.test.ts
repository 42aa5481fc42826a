// The GGUF vocabulary tokenizer: metadata read with @huggingface/gguf from stories260K.gguf gives the ids of
// @huggingface/tokenizers on tokenizer.json, and all three tokenizers (tokenizer.json, GGUF, tokenizer.bin) decode
// every id sequence, valid or not, to the same text. Bad metadata is a typed error.
import { sharedModelsDir, referenceGreedyText, TOKENIZER_TEXTS } from '../ref/shared_models.js';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gguf } from '@huggingface/gguf';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { createGgufTokenizer, hasGgufSentencePieceVocab } from '../../src/tokenizer/gguf_vocab.js';
import { createHfTokenizer } from '../../src/tokenizer/hf.js';
import { createLlama2cTokenizer } from '../../src/tokenizer/llama2c.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import type { SentencePieceBpe } from '../../src/tokenizer/sentencepiece_bpe.js';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import { mulberry32, testSeed } from '../ref/random.js';

const DIR = `${sharedModelsDir()}/stories260K`;
const tokenizerJson = JSON.parse(readFileSync(`${DIR}/hf/tokenizer.json`, 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(`${DIR}/hf/tokenizer_config.json`, 'utf8'));
const hfLib = new HfLibTokenizer(tokenizerJson, tokenizerConfig);
const hf = createHfTokenizer(tokenizerJson, tokenizerConfig);
const l2c = createLlama2cTokenizer(readFileSync(`${DIR}/llama2c/tok512.bin`), { vocabSize: 512 });
const expectedText = referenceGreedyText();

const TEXTS = TOKENIZER_TEXTS;

let meta: Record<string, unknown>;
let tok: SentencePieceBpe;

beforeAll(async () => {
  const parsed = await gguf(`${DIR}/gguf/stories260K.gguf`, { allowLocalFile: true });
  meta = parsed.metadata as Record<string, unknown>;
  tok = createGgufTokenizer(meta);
});

describe('GGUF vocabulary tokenizer (stories260K)', () => {
  it('reads the vocabulary and special ids from the metadata', () => {
    expect(hasGgufSentencePieceVocab(meta)).toBe(true);
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.piece(259)).toBe('\u2581t');
  });

  it.each(TEXTS)('gives the ids of @huggingface/tokenizers for %j', (text) => {
    expect(tok.encode(text)).toEqual(hfLib.encode(text).ids);
    expect(tok.encode(text, { addBos: false })).toEqual(hfLib.encode(text, { add_special_tokens: false }).ids);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('matches the library and the tokenizer.bin on random text, and round-trips', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 50 }), (text) => {
        const ids = tok.encode(text);
        expect(ids).toEqual(hfLib.encode(text).ids);
        expect(ids).toEqual(l2c.encode(text));
        expect(tok.decode(ids)).toBe(text);
      }),
      { numRuns: 200, seed: testSeed() },
    );
  });

  it('decodes the published greedy text like run.c', () => {
    const ids = tok.encode(expectedText);
    expect(ids).toEqual(hf.encode(expectedText));
    expect(tok.decode(ids)).toBe(expectedText);
    expect(tok.decode(ids.slice(1))).toBe(` ${expectedText}`);
  });

  it('decodes random id sequences exactly as the other two tokenizers do', () => {
    // Draws favour the awkward ids: BOS/EOS/<unk> and byte pieces, so unfinished and invalid UTF-8 is common.
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (let trial = 0; trial < 300; trial++) {
      const len = Math.floor(rand() * 24);
      const ids: number[] = [];
      for (let i = 0; i < len; i++) {
        const r = rand();
        ids.push(r < 0.15 ? Math.floor(rand() * 3) : r < 0.6 ? 3 + Math.floor(rand() * 256) : Math.floor(rand() * 512));
      }
      const text = hf.decode(ids);
      expect(tok.decode(ids), `seed ${seed}, ids ${JSON.stringify(ids)}`).toBe(text);
      expect(l2c.decode(ids), `seed ${seed}, ids ${JSON.stringify(ids)}`).toBe(text);
    }
  });

  it('loadTokenizer takes the GGUF vocabulary when there is no tokenizer.json', () => {
    const loaded = loadTokenizer({ ggufMetadata: meta, llama2cTokenizer: new Uint8Array(3) });
    expect(loaded.source).toBe('gguf');
    expect(loaded.bosToken).toBe('<s>');
    expect(loaded.eosToken).toBe('</s>');
    expect(loaded.tokenizer.encode('Lily ran.')).toEqual(hf.encode('Lily ran.'));
  });

  it('honours add_bos_token and add_space_prefix', () => {
    const noBos = createGgufTokenizer({ ...meta, 'tokenizer.ggml.add_bos_token': false });
    expect(noBos.encode('hi')).toEqual(hf.encode('hi', { addBos: false }));
    const noPrefix = createGgufTokenizer({ ...meta, 'tokenizer.ggml.add_space_prefix': false });
    expect(noPrefix.decode(noPrefix.encode('hi', { addBos: false }))).toBe('hi');
    expect(noPrefix.encode('hi', { addBos: false })).not.toEqual(tok.encode('hi', { addBos: false }));
  });

  it('splits special-token text only when asked, and user-defined tokens always', () => {
    // <s>, </s> are control tokens: spelled out by encode, matched with parseSpecial like the HF library.
    const text = '<s>Lily ran.</s> Tom';
    expect(tok.encode(text, { addBos: false })).not.toContain(2);
    expect(tok.encode(text, { addBos: false, parseSpecial: true })).toEqual(hfLib.encode(text, { add_special_tokens: false }).ids);
    const tokens = [...(meta['tokenizer.ggml.tokens'] as string[])];
    const types = [...(meta['tokenizer.ggml.token_type'] as number[])];
    tokens[500] = '<|im_start|>';
    types[500] = 4; // USER_DEFINED
    const withAdded = createGgufTokenizer({ ...meta, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.token_type': types });
    const ids = withAdded.encode('hi<|im_start|>user', { addBos: false });
    expect(ids).toContain(500);
    expect(withAdded.decode(ids)).toBe(' hi<|im_start|> user'); // the fragment after a token gets the dummy prefix
  });

  it('rejects bad metadata with typed errors', () => {
    const bad = (patch: Record<string, unknown>): (() => unknown) => () => createGgufTokenizer({ ...meta, ...patch });
    expect(bad({ 'tokenizer.ggml.model': 'gpt2' })).toThrow(UnsupportedModelError);
    expect(bad({ 'tokenizer.ggml.tokens': undefined })).toThrow(ModelFormatError);
    expect(bad({ 'tokenizer.ggml.tokens': 'abc' })).toThrow(ModelFormatError);
    expect(bad({ 'tokenizer.ggml.scores': [1, 2, 3] })).toThrow(ModelFormatError);
    expect(bad({ 'tokenizer.ggml.token_type': new Array(512).fill('x') })).toThrow(ModelFormatError);
    expect(bad({ 'tokenizer.ggml.bos_token_id': 9999 })).toThrow(ModelFormatError);
    const types = [...(meta['tokenizer.ggml.token_type'] as number[])];
    types[300] = 6; // a byte token whose piece is not <0xXX>
    expect(bad({ 'tokenizer.ggml.token_type': types })).toThrow(ModelFormatError);
    expect(createGgufTokenizer({ ...meta, 'tokenizer.ggml.bos_token_id': 0xffffffff }).bosTokenId).toBeNull();
  });
});
