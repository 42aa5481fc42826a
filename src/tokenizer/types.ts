// What the engine needs from a tokenizer, whatever its source (tokenizer.json, GGUF vocabulary, llama2.c tokenizer.bin).
export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** Token ids of `text`; a BOS is prepended when the model's tokenizer config asks for it and `addBos` is not false. */
  encode(text: string, options?: { addBos?: boolean }): number[];
  /** Text of a generated token sequence (no special tokens, byte-fallback pieces merged into UTF-8). */
  decode(ids: readonly number[]): string;
}
