// The tokenizer module's surface: pick a tokenizer from whatever files a model came with. Nothing here reads files,
// so it serves the browser (fetch) and Node (fs) alike; callers pass parsed JSON, GGUF metadata or raw bytes.
import type { Tokenizer } from './types.js';
import { ModelNotFoundError } from '../errors.js';
import { createHfTokenizer } from './hf.js';
import { createGgufTokenizer } from './gguf_vocab.js';
import { createGgufBpeTokenizer, hasGgufBpeVocab } from './gguf_bpe.js';
import { createLlama2cTokenizer } from './llama2c.js';
import { findChatTemplate } from './chat.js';

export type { Tokenizer } from './types.js';
export { HfTokenizerAdapter, createHfTokenizer, specialTokenText } from './hf.js';
export { createLlama2cTokenizer, parseLlama2cTokenizer, LLAMA2C_BOS_ID, LLAMA2C_EOS_ID, LLAMA2C_UNK_ID } from './llama2c.js';
export type { Llama2cTokenizerFile } from './llama2c.js';
export { createGgufTokenizer, hasGgufSentencePieceVocab } from './gguf_vocab.js';
export { createGgufBpeTokenizer, ggufBpeTokenizerJson, hasGgufBpeVocab, GGUF_BPE_PRE_TOKENIZERS } from './gguf_bpe.js';
export { SentencePieceBpe, PieceKind } from './sentencepiece_bpe.js';
export type { SentencePieceVocab } from './sentencepiece_bpe.js';
export { applyChatTemplate, encodeChat, encodeChatPrompt, findChatTemplate, requireChatTemplate } from './chat.js';
export type { EncodeOptions, PromptPart } from './types.js';
export type { ChatMessage, ChatTemplateOptions, ChatTemplateSource } from './chat.js';
export { StreamDecoder } from './stream_decoder.js';

/** The tokenizer files a model may come with; any subset. */
export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizerJson?: unknown;
  /** Parsed tokenizer_config.json (BOS policy, special tokens, chat_template). */
  tokenizerConfig?: unknown;
  /** Extra end-of-sequence ids, e.g. generation_config.json `eos_token_id` (a number or a list). */
  eosTokenIds?: number | readonly number[];
  /** The GGUF metadata record (tokenizer.ggml.* keys). */
  ggufMetadata?: Readonly<Record<string, unknown>>;
  /** The bytes of a llama2.c tokenizer.bin. */
  llama2cTokenizer?: Uint8Array | ArrayBuffer;
  /** The checkpoint's vocabulary size, to check a tokenizer.bin against. */
  vocabSize?: number;
  /** Model name for messages. */
  name?: string;
}

export interface LoadedTokenizer {
  tokenizer: Tokenizer;
  source: 'tokenizer.json' | 'gguf' | 'tokenizer.bin';
  /** The chat template when the files carry one. */
  chatTemplate: string | null;
  /** BOS and EOS text for chat templates (null when unknown). */
  bosToken: string | null;
  eosToken: string | null;
}

/**
 * The tokenizer of a model from the files it has, preferring tokenizer.json (the reference implementation), then the
 * GGUF vocabulary, then llama2.c's tokenizer.bin.
 */
export function loadTokenizer(files: TokenizerFiles): LoadedTokenizer {
  const name = files.name ?? 'the model';
  const extraEos = files.eosTokenIds === undefined ? [] : typeof files.eosTokenIds === 'number' ? [files.eosTokenIds] : files.eosTokenIds;
  const config = (files.tokenizerConfig ?? undefined) as Readonly<Record<string, unknown>> | undefined;
  const chatTemplate = findChatTemplate({ tokenizerConfig: config, ggufMetadata: files.ggufMetadata });
  if (files.tokenizerJson !== undefined) {
    const t = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, { eosTokenIds: extraEos });
    return { tokenizer: t, source: 'tokenizer.json', chatTemplate, bosToken: t.bosToken, eosToken: t.eosToken };
  }
  if (files.ggufMetadata !== undefined && hasGgufBpeVocab(files.ggufMetadata)) {
    // Byte-level BPE ("gpt2"): a tokenizer.json built from the GGUF vocabulary, run by @huggingface/tokenizers.
    const t = createGgufBpeTokenizer(files.ggufMetadata, `${name} (GGUF BPE vocabulary)`);
    return { tokenizer: t, source: 'gguf', chatTemplate, bosToken: t.bosToken, eosToken: t.eosToken };
  }
  if (files.ggufMetadata !== undefined) {
    const t = createGgufTokenizer(files.ggufMetadata, `${name} (GGUF vocabulary)`);
    return {
      tokenizer: t,
      source: 'gguf',
      chatTemplate,
      bosToken: t.bosTokenId !== null ? (t.piece(t.bosTokenId) ?? null) : null,
      eosToken: t.eosTokenIds.length > 0 ? (t.piece(t.eosTokenIds[0]) ?? null) : null,
    };
  }
  if (files.llama2cTokenizer !== undefined) {
    const t = createLlama2cTokenizer(files.llama2cTokenizer, { vocabSize: files.vocabSize, label: `${name} tokenizer.bin` });
    return { tokenizer: t, source: 'tokenizer.bin', chatTemplate: null, bosToken: null, eosToken: null };
  }
  throw new ModelNotFoundError(
    `No tokenizer for ${name}: expected tokenizer.json, a GGUF file with a tokenizer.ggml vocabulary, or a llama2.c ` +
      `tokenizer.bin. Add one of them to the model's files.`,
  );
}
