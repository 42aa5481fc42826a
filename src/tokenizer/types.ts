// What the engine needs from a tokenizer, whatever its source (tokenizer.json, GGUF vocabulary, llama2.c tokenizer.bin).
//
// Special tokens (BOS, EOS, <|im_start|>, ...) never come out of user text: encode spells text like "<s>" or
// "</s>" out as ordinary pieces unless `parseSpecial: true` is passed (llama.cpp's parse_special, off by default
// there too), so a prompt cannot end a sequence or open a turn by typing a control token, and the same text gives
// the same ids from every file format. Chat templates insert their own special tokens through encodeParts
// (tokenizer/chat.ts), while the messages' contents stay text.

export interface EncodeOptions {
  /** Prepend BOS when the model's tokenizer config asks for it (default true); false never prepends. */
  addBos?: boolean;
  /** Turn special-token text in `text` into those tokens (default false: it stays text). Only for trusted text. */
  parseSpecial?: boolean;
}

/** A part of a prompt for encodeParts: text (encoded as text) or a token id (taken as it is). */
export type PromptPart = string | number;

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /**
   * The special (control) tokens by their text: what parseSpecial and chat templates may turn into ids. Added tokens
   * that are not special (HF `special: false`, GGUF USER_DEFINED) are not listed: they are always matched in text.
   */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Token ids of `text`; special-token text stays text unless `parseSpecial`. */
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * Token ids of a sequence of parts: text parts as encode(part) would see them inside a longer text that has the id
   * parts at those places (so a text part after a token follows the tokenizer's rule for text after a special token),
   * never parsing special-token text; id parts as they are. BOS as in encode.
   */
  encodeParts(parts: readonly PromptPart[], options?: { addBos?: boolean }): number[];
  /** Text of a generated token sequence (no special tokens, byte-fallback pieces merged into UTF-8). */
  decode(ids: readonly number[]): string;
}

/** `text` split at every occurrence of the texts in `special` (longest first where they overlap): text and ids. */
export function splitSpecial(text: string, special: ReadonlyMap<string, number>): PromptPart[] {
  if (special.size === 0 || text.length === 0) return text.length > 0 ? [text] : [];
  const alternation = [...special.keys()]
    .filter((s) => s.length > 0)
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  const parts: PromptPart[] = [];
  text.split(new RegExp(`(${alternation})`, 'u')).forEach((p, i) => {
    if (i % 2 === 1) parts.push(special.get(p)!);
    else if (p.length > 0) parts.push(p);
  });
  return parts;
}
