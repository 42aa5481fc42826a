// Incremental decoding for streaming generated text: push token ids one at a time, get back only the text that is
// final. Concatenating every push() and the closing flush() gives exactly tokenizer.decode(all pushed ids) (or, with
// a context, decode(context + pushed) minus decode(context)).
//
// Works over any Tokenizer through decode() alone, with the offsets scheme of text-generation-inference and vLLM:
// decode a short window of ids that starts at a point already emitted, and emit what the window added beyond the
// text it had at the last emission. Text is held back while it ends in U+FFFD: an unfinished UTF-8 sequence of byte
// tokens decodes to U+FFFD now and to a character once its last byte arrives. A non-fatal UTF-8 decoder is
// prefix-stable apart from that tail, so a window always starts at a character boundary and whatever is emitted never
// changes. The window's text and the text it is diffed against are decoded from the same start, so decode's
// after-BOS space rule (which looks at what precedes a piece) cancels out.
import type { Tokenizer } from './types.js';

/** How many already-emitted ids a context window keeps in front of the first new id. */
const CONTEXT_WINDOW = 8;

export class StreamDecoder {
  private readonly ids: number[] = [];
  private readonly contextLength: number;
  /** Start of the window decoded at each step: ids before it are final and their text emitted. */
  private prefixOffset = 0;
  /** End of the ids whose text has been emitted. */
  private readOffset = 0;
  /** decode(ids[prefixOffset:readOffset]), remembered to diff against. */
  private prefixText = '';

  /**
   * `context`: ids already shown (the prompt), whose text is not emitted but which the first generated token is
   * decoded after, so e.g. a continuation's leading space is kept or dropped exactly as decode(context + ids) does.
   */
  constructor(
    private readonly tokenizer: Tokenizer,
    options?: { context?: readonly number[] },
  ) {
    const context = options?.context ?? [];
    this.contextLength = context.length;
    if (context.length > 0) {
      this.ids.push(...context);
      this.readOffset = context.length;
      this.prefixOffset = Math.max(0, context.length - CONTEXT_WINDOW);
      this.prefixText = tokenizer.decode(context.slice(this.prefixOffset));
    }
  }

  /** All ids pushed so far (the context not included). */
  get tokens(): readonly number[] {
    return this.ids.slice(this.contextLength);
  }

  /** Adds one id; returns the text that became final (often '', never text that a later id could change). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (text.length <= this.prefixText.length || text.endsWith('\uFFFD')) return '';
    return this.emit(text);
  }

  /** Pushes several ids; returns the text that became final. */
  pushAll(ids: readonly number[]): string {
    let out = '';
    for (const id of ids) out += this.push(id);
    return out;
  }

  /** Ends the stream: returns the text still held back (an unfinished UTF-8 sequence decodes to U+FFFD here). */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    return this.emit(text);
  }

  private emit(text: string): string {
    // text extends prefixText whenever the window starts at a character boundary, which the hold rule guarantees;
    // the fallback only serves a caller-supplied context that ends mid-character, at the cost of exactness.
    const extends_ = text.startsWith(this.prefixText);
    let common = this.prefixText.length;
    if (!extends_) {
      common = 0;
      while (common < text.length && text[common] === this.prefixText[common]) common++;
    }
    const out = text.slice(common);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    // Decoded again rather than taken from `out`: after a BOS the window start changes how the first piece decodes.
    this.prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    return out;
  }
}

/**
 * The text `ids` add after `context` (a prompt): what a terminal shows, e.g. without the space run.c strips after BOS.
 * The same text as a StreamDecoder fed `ids` after `context` (test/unit/stream_decoder.test.ts), in two decodes: the
 * decoder's first window (the last CONTEXT_WINDOW context ids) with and without `ids`, rather than one per id (EAB
 * decodes every sample's text at the end of a run: 16 samples of 64 tokens took 2-80 ms streamed).
 */
export function decodeContinuation(tokenizer: Tokenizer, context: readonly number[], ids: readonly number[]): string {
  const head = context.slice(Math.max(0, context.length - CONTEXT_WINDOW));
  const before = tokenizer.decode(head);
  const text = tokenizer.decode([...head, ...ids]);
  if (text.startsWith(before)) return text.slice(before.length);
  // A context ending mid-character can decode differently once continued: the streamed rule handles it.
  const d = new StreamDecoder(tokenizer, { context });
  return d.pushAll(ids) + d.flush();
}
