// A Tokenizer over a Hugging Face tokenizer.json (+ tokenizer_config.json), through @huggingface/tokenizers. It takes
// parsed JSON objects, so the browser can fetch the files and Node can read them, and neither path touches fs here.
//
// Two places where forklm deliberately differs from calling the library directly:
// - BOS comes from tokenizer_config's `add_bos_token` (else from what the post-processor does), prepended here, so
//   `addBos: false` works for every tokenizer; the library's `add_special_tokens` would also add EOS or pair tokens.
// - decode follows run.c rather than the library's Strip/Metaspace decoders: only text right after a BOS loses its
//   leading (dummy-prefix) space. decode(generated ids) of a continuation then keeps its first space, exactly as the
//   SentencePiece tokenizers (llama2c.ts, gguf_vocab.ts) decode it, and the three agree on every id sequence.
//   `clean_up_tokenization_spaces` is never applied: it rewrites " ." across token boundaries, so text would change
//   after it was streamed.
// - Special added tokens are matched in text only with `parseSpecial: true` (what the library does by default): plain
//   encode goes through a second library tokenizer built from the same tokenizer.json without the special added
//   tokens, so "<s>" in user text is spelled out exactly as the SentencePiece tokenizers and llama.cpp spell it, while
//   non-special added tokens are still matched (transformers' `split_special_tokens=True`, which the JS library
//   declares but does not implement). That tokenizer also has one private non-special added token, a random sentinel:
//   encodeParts puts it before a text part that follows a token, so the library gives that part the section position
//   it has in the whole text (Metaspace's prepend_scheme "first" prefixes only the first section).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { EncodeOptions, PromptPart, Tokenizer } from './types.js';
import { InvalidArgumentError, ModelFormatError } from '../errors.js';

type Json = Readonly<Record<string, unknown>>;

/** A special-token field of tokenizer_config.json: a string or an AddedToken object `{ content }`. */
export function specialTokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

/** Single-character pieces that decode to themselves in every common decoder (SentencePiece, byte-level, WordPiece). */
const PROBE_CANDIDATES = ['a', 'e', 't', 'x', 'A', '0', '.'];

export class HfTokenizerAdapter implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  /** BOS text from the config, e.g. "<s>", for chat templates. */
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** The raw tokenizer_config.json (chat_template lives there). */
  readonly config: Json;
  private readonly addBos: boolean;
  private readonly lib: HfTokenizer;
  /** The library without special added tokens (plain text), plus the sentinel added token. */
  private readonly textLib: HfTokenizer;
  private readonly sentinel: string;
  readonly specialTokens: ReadonlyMap<string, number>;
  /** lstrip / rstrip of the special added tokens: the whitespace they take from their neighbours. */
  private readonly strip = new Map<number, { lstrip: boolean; rstrip: boolean }>();
  /** A plain token decoded in front of text that must not lose its leading space, and the text it decodes to. */
  private readonly probe: { id: number; text: string } | null;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}, options?: { eosTokenIds?: readonly number[] }) {
    if (tokenizerJson === null || typeof tokenizerJson !== 'object' || typeof tokenizerJson.model !== 'object') {
      throw new ModelFormatError('tokenizer.json has no "model" object; pass the parsed JSON of a Hugging Face tokenizer.json.');
    }
    // 128 random bits between noncharacters: no text a user sends contains it.
    const nonce = Array.from(crypto.getRandomValues(new Uint32Array(4)), (w) => w.toString(16).padStart(8, '0')).join('');
    this.sentinel = `\ufdd0${nonce}\ufdd1`;
    try {
      // tokenizers.js validates that every top-level key is present (null allowed).
      const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tokenizerJson };
      const config = { ...tokenizerConfig, clean_up_tokenization_spaces: false };
      this.lib = new HfTokenizer(full, config);
      const added = (Array.isArray(full.added_tokens) ? full.added_tokens : []) as { id: number; content: string; special?: boolean }[];
      let top = -1;
      for (const id of this.lib.get_vocab(true).values()) if (id > top) top = id;
      const sentinel = { id: top + 1, content: this.sentinel, special: false, normalized: false, lstrip: false, rstrip: false, single_word: false };
      this.textLib = new HfTokenizer({ ...full, added_tokens: [...added.filter((t) => !t.special), sentinel] }, config);
    } catch (e) {
      throw new ModelFormatError(`tokenizer.json could not be loaded: ${(e as Error).message}. Download it again.`, { cause: e });
    }
    this.config = tokenizerConfig;
    const special = new Map<string, number>();
    for (const [id, t] of this.lib.get_added_tokens_decoder()) {
      if (!t.special) continue;
      special.set(t.content, id);
      this.strip.set(id, { lstrip: !!t.lstrip, rstrip: !!t.rstrip });
    }
    this.specialTokens = special;
    let maxId = -1; // a loop, not Math.max(...ids): 150k-entry vocabularies exceed the argument limit
    for (const id of this.lib.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.bosToken = specialTokenText(tokenizerConfig.bos_token);
    this.eosToken = specialTokenText(tokenizerConfig.eos_token);
    this.bosTokenId = this.bosToken !== null ? (this.lib.token_to_id(this.bosToken) ?? null) : null;
    if (this.bosTokenId === null) {
      // No bos_token in the config: the post-processor's first special token, if it adds one (Llama 3 style).
      const withSpecial = this.lib.encode('', { add_special_tokens: true }).ids;
      const special = new Set(this.specialIds());
      if (withSpecial.length > 0 && special.has(withSpecial[0])) this.bosTokenId = withSpecial[0];
    }
    const eos = this.eosToken !== null ? this.lib.token_to_id(this.eosToken) : undefined;
    const eosIds = [...(eos !== undefined ? [eos] : []), ...(options?.eosTokenIds ?? [])];
    this.eosTokenIds = eosIds.filter((id, i) => eosIds.indexOf(id) === i);
    const addBosConfig = tokenizerConfig.add_bos_token;
    this.addBos =
      this.bosTokenId !== null &&
      (typeof addBosConfig === 'boolean' ? addBosConfig : this.lib.encode('', { add_special_tokens: true }).ids[0] === this.bosTokenId);
    this.probe = this.findProbe();
  }

  private specialIds(): number[] {
    return [...this.lib.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id);
  }

  private findProbe(): { id: number; text: string } | null {
    for (const c of PROBE_CANDIDATES) {
      const id = this.lib.token_to_id(c);
      if (id === undefined) continue;
      const text = this.lib.decode([id], { skip_special_tokens: true });
      if (text.length > 0 && !/^\s/u.test(text)) return { id, text };
    }
    return null;
  }

  /** The token string of `id` (e.g. "▁the", "<0x0A>"), or undefined outside the vocabulary. */
  piece(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  /** The library tokenizer, for what this adapter does not wrap. */
  get library(): HfTokenizer {
    return this.lib;
  }

  encode(text: string, options?: EncodeOptions): number[] {
    const ids = text.length === 0 ? [] : options?.parseSpecial ? this.lib.encode(text, { add_special_tokens: false }).ids : this.encodeText(text, false);
    if (this.addBos && options?.addBos !== false && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    return ids;
  }

  encodeParts(parts: readonly PromptPart[], options?: { addBos?: boolean }): number[] {
    const ids: number[] = [];
    if (this.addBos && options?.addBos !== false && this.bosTokenId !== null) ids.push(this.bosTokenId);
    parts.forEach((part, i) => {
      if (typeof part === 'number') {
        if (!(Number.isInteger(part) && part >= 0 && part < this.vocabSize))
          throw new InvalidArgumentError(`token id ${part} is outside the vocabulary (0..${this.vocabSize - 1}).`);
        ids.push(part);
        return;
      }
      // The whitespace a neighbouring special token strips, as the library strips it around a matched token.
      let text = part;
      const prev = parts[i - 1];
      const next = parts[i + 1];
      if (typeof next === 'number' && this.strip.get(next)?.lstrip) text = text.trimEnd();
      if (typeof prev === 'number' && this.strip.get(prev)?.rstrip) text = text.trimStart();
      if (text.length > 0) ids.push(...this.encodeText(text, i > 0));
    });
    return ids;
  }

  /** `text` as plain text (special-token text spelled out); `afterToken`: as a section that follows a matched token. */
  private encodeText(text: string, afterToken: boolean): number[] {
    if (text.includes(this.sentinel)) throw new InvalidArgumentError('the text contains forklm\'s private sentinel string.');
    if (!afterToken) return this.textLib.encode(text, { add_special_tokens: false }).ids;
    return this.textLib.encode(this.sentinel + text, { add_special_tokens: false }).ids.slice(1);
  }

  decode(ids: readonly number[]): string {
    let text = '';
    let segment: number[] = [];
    let afterBos = false;
    const flush = (): void => {
      if (segment.length > 0) text += afterBos ? this.decodeAfterBos(segment) : this.decodeRaw(segment);
      segment = [];
    };
    for (const id of ids) {
      if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new InvalidArgumentError(
          `cannot decode token id ${id}: the tokenizer has ids 0..${this.vocabSize - 1}. ` +
            `Mask logits beyond the tokenizer's vocabulary before sampling.`,
        );
      }
      if (id === this.bosTokenId) {
        flush();
        afterBos = true;
      } else {
        segment.push(id);
      }
    }
    flush();
    return text;
  }

  /** The library's decode: SentencePiece decoders drop the leading space, which after a BOS is the dummy prefix. */
  private decodeAfterBos(ids: number[]): string {
    return this.lib.decode(ids, { skip_special_tokens: true });
  }

  /** Decode keeping a leading space: put the probe token first, so any leading strip falls on it, then cut it off. */
  private decodeRaw(ids: number[]): string {
    if (this.probe !== null) {
      const s = this.lib.decode([this.probe.id, ...ids], { skip_special_tokens: true });
      if (s.startsWith(this.probe.text)) return s.slice(this.probe.text.length);
    }
    return this.lib.decode(ids, { skip_special_tokens: true });
  }
}

/** A Tokenizer from parsed tokenizer.json and (optional) tokenizer_config.json objects. */
export function createHfTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig?: unknown,
  options?: { eosTokenIds?: readonly number[] },
): HfTokenizerAdapter {
  if (tokenizerJson === null || typeof tokenizerJson !== 'object') {
    throw new ModelFormatError('tokenizer.json must be a JSON object; pass JSON.parse of the file, not its text.');
  }
  if (tokenizerConfig !== undefined && (tokenizerConfig === null || typeof tokenizerConfig !== 'object')) {
    throw new ModelFormatError('tokenizer_config.json must be a JSON object; pass JSON.parse of the file, not its text.');
  }
  return new HfTokenizerAdapter(tokenizerJson as Json, (tokenizerConfig ?? {}) as Json, options);
}
