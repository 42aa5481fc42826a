// llama2.c's tokenizer.bin: int32 max_token_length, then per token: f32 score, int32 byte length, the piece bytes
// (spaces as ' ', BOS stored as "\n<s>\n" and EOS as "\n</s>\n" by llama2.c's tokenizer.py). The file does not
// record the vocabulary size (run.c takes it from the checkpoint header), so without one we read to the end of file.
// Every length is checked against the bytes left before anything is allocated: a corrupt file is a ModelFormatError.
import { ModelFormatError } from '../errors.js';
import { ByteReader } from '../io/bytes.js';
import { PieceKind, SentencePieceBpe, bytePieceValue } from './sentencepiece_bpe.js';

/** llama2.c's fixed special ids (run.c hard-codes BOS=1, EOS=2; SentencePiece puts <unk> at 0). */
export const LLAMA2C_UNK_ID = 0;
export const LLAMA2C_BOS_ID = 1;
export const LLAMA2C_EOS_ID = 2;

/** No real piece is anywhere near this long; a larger max_token_length means the header is not a tokenizer.bin. */
const MAX_PIECE_BYTES = 1 << 16;

export interface Llama2cTokenizerFile {
  readonly maxTokenLength: number;
  readonly pieces: Uint8Array[]; // (vocab) piece bytes, views into the file
  readonly scores: Float32Array; // (vocab)
}

/**
 * Parses a tokenizer.bin. `vocabSize` (from the checkpoint header) makes the reader take exactly that many tokens
 * and reject trailing bytes; without it the file must end exactly after its last token.
 */
export function parseLlama2cTokenizer(data: Uint8Array | ArrayBuffer, vocabSize?: number, label = 'tokenizer.bin'): Llama2cTokenizerFile {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const r = new ByteReader(bytes, label);
  if (vocabSize !== undefined && !(Number.isInteger(vocabSize) && vocabSize > 0)) {
    throw new ModelFormatError(`${label}: vocabulary size ${vocabSize} (from the checkpoint) is not a positive integer.`);
  }
  const maxTokenLength = r.i32('max_token_length');
  if (!(maxTokenLength > 0 && maxTokenLength <= MAX_PIECE_BYTES)) {
    throw new ModelFormatError(
      `${label}: max_token_length is ${maxTokenLength}, expected 1..${MAX_PIECE_BYTES}; this is not a llama2.c tokenizer.bin.`,
    );
  }
  // Each token takes at least 8 bytes, so the count is bounded by the file size before any array is sized.
  const bound = Math.floor(r.remaining / 8);
  if (vocabSize !== undefined && vocabSize > bound) {
    throw new ModelFormatError(
      `${label}: the checkpoint has ${vocabSize} tokens but the file has room for at most ${bound}; ` +
        `it is truncated or belongs to another model.`,
    );
  }
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  while (vocabSize !== undefined ? pieces.length < vocabSize : r.remaining > 0) {
    const i = pieces.length;
    const score = r.f32(`the score of token ${i}`);
    const len = r.i32(`the length of token ${i}`);
    if (Number.isNaN(score)) {
      throw new ModelFormatError(`${label}: token ${i} has a NaN score; the file is corrupt.`);
    }
    if (!(len >= 0 && len <= maxTokenLength)) {
      throw new ModelFormatError(
        `${label}: token ${i} claims ${len} bytes, outside 0..max_token_length (${maxTokenLength}); the file is corrupt.`,
      );
    }
    pieces.push(r.bytesView(len, `the ${len} bytes of token ${i}`));
    scores.push(score);
  }
  if (r.remaining > 0) {
    throw new ModelFormatError(
      `${label}: ${r.remaining} byte(s) left after the ${pieces.length} tokens the checkpoint declares; ` +
        `the tokenizer belongs to another model (vocabulary size mismatch).`,
    );
  }
  if (pieces.length <= LLAMA2C_EOS_ID) {
    throw new ModelFormatError(`${label}: only ${pieces.length} token(s); llama2.c needs at least <unk>, BOS and EOS.`);
  }
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** A Tokenizer over a tokenizer.bin, encoding like llama2.c's `encode` and decoding like run.c's `decode`. */
export function createLlama2cTokenizer(
  data: Uint8Array | ArrayBuffer,
  options?: { vocabSize?: number; label?: string },
): SentencePieceBpe {
  const label = options?.label ?? 'tokenizer.bin';
  const file = parseLlama2cTokenizer(data, options?.vocabSize, label);
  const kinds = file.pieces.map((p, id) => {
    if (id === LLAMA2C_UNK_ID) return PieceKind.Unknown;
    if (id === LLAMA2C_BOS_ID || id === LLAMA2C_EOS_ID) return PieceKind.Control;
    return bytePieceValue(p) >= 0 ? PieceKind.Byte : PieceKind.Normal;
  });
  // llama2.c's export writes BOS and EOS as "\n<s>\n" and "\n</s>\n" (run.c prints them so); their text as special
  // tokens (parseSpecial, chat templates) is SentencePiece's, as in tokenizer.json and GGUF vocabularies.
  const text = new TextEncoder();
  const pieces = file.pieces.map((p, id) =>
    id === LLAMA2C_UNK_ID ? text.encode('<unk>') : id === LLAMA2C_BOS_ID ? text.encode('<s>') : id === LLAMA2C_EOS_ID ? text.encode('</s>') : p,
  );
  return new SentencePieceBpe({
    pieces,
    scores: file.scores,
    kinds,
    spaceSymbol: ' ',
    bosTokenId: LLAMA2C_BOS_ID,
    eosTokenIds: [LLAMA2C_EOS_ID],
    unkTokenId: LLAMA2C_UNK_ID,
    addBos: true,
    addSpacePrefix: true,
    label,
  });
}
