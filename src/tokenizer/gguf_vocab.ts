// A SentencePiece-BPE tokenizer from the vocabulary a GGUF file carries in its metadata (tokenizer.ggml.* keys, as
// @huggingface/gguf's `metadata` object or any reader that yields the same key -> value record). Only
// tokenizer.ggml.model == "llama" (SentencePiece with scores) is handled here; byte-level BPE vocabularies ("gpt2")
// go through gguf_bpe.ts.
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { PieceKind, SentencePieceBpe } from './sentencepiece_bpe.js';

/** GGUF's token_type values (llama.cpp's llama_token_type). */
const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** GGUF stores "no such token" as -1 in a uint32 field. */
const NO_TOKEN = 0xffffffff;

type Metadata = Readonly<Record<string, unknown>>;

function arrayOf(meta: Metadata, key: string, label: string): ArrayLike<unknown> {
  const v = meta[key];
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return v as ArrayLike<unknown>;
  throw new ModelFormatError(
    `${label}: metadata key ${key} is ${v === undefined ? 'missing' : 'not an array'}; ` +
      `the GGUF file has no usable vocabulary: use the model's tokenizer.json instead.`,
  );
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function optionalId(meta: Metadata, key: string, vocabSize: number, label: string): number | null {
  const v = meta[key];
  if (v === undefined) return null;
  const id = toNumber(v);
  if (id === undefined || id === NO_TOKEN || id === -1) return null;
  if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
    throw new ModelFormatError(`${label}: ${key} is ${String(v)}, outside the vocabulary of ${vocabSize} tokens.`);
  }
  return id;
}

function optionalBool(meta: Metadata, key: string, fallback: boolean): boolean {
  const v = meta[key];
  return typeof v === 'boolean' ? v : fallback;
}

/** Whether the GGUF metadata holds a vocabulary this module can tokenize with. */
export function hasGgufSentencePieceVocab(meta: Metadata): boolean {
  return (meta['tokenizer.ggml.model'] ?? 'llama') === 'llama' && Array.isArray(meta['tokenizer.ggml.tokens']);
}

export function createGgufTokenizer(meta: Metadata, label = 'GGUF vocabulary'): SentencePieceBpe {
  // A missing model key means SentencePiece, as llama.cpp's older converters wrote it.
  const model = meta['tokenizer.ggml.model'] ?? 'llama';
  if (model !== 'llama') {
    throw new UnsupportedModelError(
      `${label}: tokenizer.ggml.model is ${JSON.stringify(model)}; forklm reads SentencePiece ("llama") and byte-level ` +
        `BPE ("gpt2") vocabularies from GGUF. Load the model's tokenizer.json instead, or give the prompt as token ids.`,
    );
  }
  const tokens = arrayOf(meta, 'tokenizer.ggml.tokens', label);
  const scoresIn = arrayOf(meta, 'tokenizer.ggml.scores', label);
  const typesIn = arrayOf(meta, 'tokenizer.ggml.token_type', label);
  const n = tokens.length;
  if (n === 0 || scoresIn.length !== n || typesIn.length !== n) {
    throw new ModelFormatError(
      `${label}: ${n} tokens, ${scoresIn.length} scores and ${typesIn.length} token types; ` +
        `the vocabulary arrays must be non-empty and of equal length.`,
    );
  }
  const utf8 = new TextEncoder();
  const pieces = new Array<Uint8Array>(n);
  const scores = new Float64Array(n);
  const kinds = new Array<PieceKind>(n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    const s = toNumber(scoresIn[i]);
    const ty = toNumber(typesIn[i]);
    if (typeof t !== 'string' || s === undefined || Number.isNaN(s) || ty === undefined) {
      throw new ModelFormatError(`${label}: token ${i} (piece, score or type) has the wrong type; the vocabulary is corrupt.`);
    }
    pieces[i] = utf8.encode(t);
    scores[i] = s;
    kinds[i] =
      ty === GGUF_TOKEN_TYPE.unknown
        ? PieceKind.Unknown
        : ty === GGUF_TOKEN_TYPE.control
          ? PieceKind.Control
          : ty === GGUF_TOKEN_TYPE.byte
            ? PieceKind.Byte
            : ty === GGUF_TOKEN_TYPE.userDefined
              ? PieceKind.UserDefined
              : PieceKind.Normal;
  }
  const bos = optionalId(meta, 'tokenizer.ggml.bos_token_id', n, label);
  const eos = optionalId(meta, 'tokenizer.ggml.eos_token_id', n, label);
  const eot = optionalId(meta, 'tokenizer.ggml.eot_token_id', n, label);
  const eosTokenIds = [eos, eot].filter((id, i, all): id is number => id !== null && all.indexOf(id) === i);
  return new SentencePieceBpe({
    pieces,
    scores,
    kinds,
    spaceSymbol: '\u2581',
    bosTokenId: bos,
    eosTokenIds,
    unkTokenId: optionalId(meta, 'tokenizer.ggml.unknown_token_id', n, label),
    // llama.cpp's defaults for SentencePiece vocabularies when the keys are absent.
    addBos: optionalBool(meta, 'tokenizer.ggml.add_bos_token', true),
    addSpacePrefix: optionalBool(meta, 'tokenizer.ggml.add_space_prefix', true),
    label,
  });
}
