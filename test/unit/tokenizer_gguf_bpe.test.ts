// GGUF byte-level BPE vocabularies through @huggingface/tokenizers, checked against llama.cpp's own tokenizer
// (llama-server's /tokenize) on the tokenizer test texts: the arch-qwen2-bias.gguf vocabulary as llama.cpp's converter
// wrote it, and a byte-level vocabulary trained here on the same file, once under each pre-tokenizer name.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGUFValueType, encodeGguf, parseGguf, type GgufKv, type GgufFile } from '../../src/io/gguf.js';
import { createGgufBpeTokenizer, ggufBpeTokenizerJson } from '../../src/tokenizer/gguf_bpe.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { ModelFormatError, UnsupportedModelError } from '../../src/errors.js';
import { sharedFixturesDir } from '../ref/fixtures.js';
import { startLlamaServer } from '../ref/llama_server.js';
import { TOKENIZER_TEXTS } from '../ref/shared_models.js';

const QWEN2_FILE = join(sharedFixturesDir(), 'gguf/arch-qwen2-bias.gguf');
// The shared texts, plus what separates the pre-tokenizers: digit runs (1 / 1-3 / any per piece), contractions in
// both cases, newlines after punctuation, whitespace runs before words, ASCII symbols.
const TEXTS = [
  ...TOKENIZER_TEXTS,
  "I'm sure they'll say it's 1234567 or 2024; DON'T WE'VE",
  'a+b=c <tag> $5 ^x~y|z `code` 100%!\n\n  next   words\t\ttabs',
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
];

/** GPT-2's byte -> printable character map (bytes_to_unicode). */
function byteChars(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return out;
}

/**
 * A byte-level BPE vocabulary of exactly `size` tokens trained on `texts` (most frequent pair first, ties by text):
 * 3 control tokens, the 256 byte characters, then merges; unused slots filled with never-produced tokens.
 */
function trainVocab(texts: readonly string[], size: number): { tokens: string[]; merges: string[]; types: number[] } {
  const bc = byteChars();
  const enc = new TextEncoder();
  const words = texts.flatMap((t) => t.match(/'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu) ?? []);
  let seqs = words.map((w) => Array.from(enc.encode(w), (b) => bc[b]));
  const tokens = ['<unk>', '<s>', '</s>', ...bc];
  const merges: string[] = [];
  while (tokens.length < size) {
    const counts = new Map<string, number>();
    for (const s of seqs) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]} ${s[i + 1]}`, (counts.get(`${s[i]} ${s[i + 1]}`) ?? 0) + 1);
    const best = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best) break;
    const [l, r] = best[0].split(' ');
    merges.push(best[0]);
    tokens.push(l + r);
    seqs = seqs.map((s) => {
      const o: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === l && s[i + 1] === r) {
          o.push(l + r);
          i++;
        } else o.push(s[i]);
      }
      return o;
    });
  }
  for (let i = 0; tokens.length < size; i++) tokens.push(`<unused${i}>`);
  return { tokens, merges, types: tokens.map((_, i) => (i < 3 ? 3 : 1)) };
}

/** arch-qwen2-bias.gguf with its tokenizer keys replaced (the model's tensors and other keys as they are). */
function rewrite(src: GgufFile, tokenizer: Record<string, { type: GGUFValueType; value: unknown; subType?: GGUFValueType }>): Uint8Array {
  const kvs: GgufKv[] = [];
  for (const [key, value] of Object.entries(src.metadata)) {
    if (['version', 'tensor_count', 'kv_count'].includes(key) || key.startsWith('tokenizer.')) continue;
    const float = /freq_base|epsilon/.test(key);
    const type =
      typeof value === 'string' ? GGUFValueType.STRING : typeof value === 'boolean' ? GGUFValueType.BOOL : float ? GGUFValueType.FLOAT32 : GGUFValueType.UINT32;
    kvs.push({ key, type, value: value as never });
  }
  for (const [key, v] of Object.entries(tokenizer)) kvs.push({ key, type: v.type, value: v.value as never, subType: v.subType });
  const tensors = [...src.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: src.readF32(t.name) }));
  return encodeGguf(kvs, tensors);
}

const dir = mkdtempSync(join(tmpdir(), 'forklm-bpe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function compareWithLlamaCpp(file: string): Promise<void> {
  const meta = (await parseGguf(new Uint8Array(readFileSync(file)), file)).metadata;
  // Through loadTokenizer, as a model load picks it: a "gpt2" vocabulary takes the BPE path.
  const loaded = loadTokenizer({ ggufMetadata: meta, name: file });
  expect(loaded.source).toBe('gguf');
  const tok = loaded.tokenizer;
  const server = await startLlamaServer(file);
  try {
    for (const text of TEXTS) {
      expect(tok.encode(text, { addBos: false }), `${meta['tokenizer.ggml.pre']}: ${JSON.stringify(text)}`).toEqual(await server.tokenize(text));
    }
  } finally {
    await server.stop();
  }
}

describe('GGUF byte-level BPE vocabularies', () => {
  it("tokenize the arch-qwen2-bias.gguf vocabulary as llama.cpp does", async () => {
    await compareWithLlamaCpp(QWEN2_FILE);
  });

  it.each(['llama-bpe', 'qwen2', 'smollm', 'gpt-2', 'olmo', 'default'])(
    'tokenize a trained byte-level vocabulary with tokenizer.ggml.pre = %s as llama.cpp does',
    async (pre) => {
      const src = await parseGguf(new Uint8Array(readFileSync(QWEN2_FILE)), QWEN2_FILE);
      const { tokens, merges, types } = trainVocab(TEXTS, 512);
      expect(merges.length).toBeGreaterThan(100);
      const bytes = rewrite(src, {
        'tokenizer.ggml.model': { type: GGUFValueType.STRING, value: 'gpt2' },
        'tokenizer.ggml.pre': { type: GGUFValueType.STRING, value: pre },
        'tokenizer.ggml.tokens': { type: GGUFValueType.ARRAY, value: tokens, subType: GGUFValueType.STRING },
        'tokenizer.ggml.token_type': { type: GGUFValueType.ARRAY, value: types, subType: GGUFValueType.INT32 },
        'tokenizer.ggml.merges': { type: GGUFValueType.ARRAY, value: merges, subType: GGUFValueType.STRING },
        'tokenizer.ggml.bos_token_id': { type: GGUFValueType.UINT32, value: 1 },
        'tokenizer.ggml.eos_token_id': { type: GGUFValueType.UINT32, value: 2 },
      });
      const file = join(dir, `bpe-${pre}.gguf`);
      writeFileSync(file, bytes);
      await compareWithLlamaCpp(file);
    },
  );

  it('decodes what it encodes, and refuses unknown pre-tokenizers and broken vocabularies with typed errors', async () => {
    const meta = (await parseGguf(new Uint8Array(readFileSync(QWEN2_FILE)), QWEN2_FILE)).metadata;
    const { tokens, merges, types } = trainVocab(TEXTS, 512);
    const trained = { ...meta, 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.merges': merges, 'tokenizer.ggml.token_type': types, 'tokenizer.ggml.pre': 'qwen2' };
    const tok = createGgufBpeTokenizer(trained);
    for (const text of TEXTS) expect(tok.decode(tok.encode(text, { addBos: false }))).toBe(text);
    expect(tok.encode('hi')[0]).toBe(1); // add_bos_token true in the file
    expect(() => ggufBpeTokenizerJson({ ...trained, 'tokenizer.ggml.pre': 'tekken' })).toThrow(UnsupportedModelError);
    expect(() => ggufBpeTokenizerJson({ ...trained, 'tokenizer.ggml.pre': 'tekken' })).toThrow(/qwen2/);
    expect(() => ggufBpeTokenizerJson({ ...trained, 'tokenizer.ggml.merges': undefined })).toThrow(ModelFormatError);
    expect(() => ggufBpeTokenizerJson({ ...trained, 'tokenizer.ggml.token_type': [1] })).toThrow(ModelFormatError);
    expect(() => ggufBpeTokenizerJson({ ...trained, 'tokenizer.ggml.model': 'llama' })).toThrow(UnsupportedModelError);
  });
});
