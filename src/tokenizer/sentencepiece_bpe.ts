// The SentencePiece-BPE algorithm that llama2.c's `encode` implements, shared by the llama2.c tokenizer.bin reader
// (llama2c.ts) and the GGUF vocabulary reader (gguf_vocab.ts): a dummy-prefix space, one piece per UTF-8 character
// (raw byte pieces <0xXX> for characters not in the vocabulary), then repeatedly merge the adjacent pair whose
// concatenation is the vocabulary piece with the highest score, leftmost on ties. llama2.c rescans all pairs per merge
// (quadratic); a heap with lazily discarded stale pairs gives the same merges in O(n log n).
//
// Decoding follows run.c: pieces are concatenated as bytes (byte pieces contribute their raw byte), control tokens
// contribute nothing, and the leading space of the text after a BOS is dropped (it is the dummy prefix encode added).
// Bytes become text with a non-fatal UTF-8 decoder, so an invalid sequence gives U+FFFD exactly as
// @huggingface/tokenizers' ByteFallback decoder does; the three tokenizers agree on every id sequence.
import { concatBytes } from '../io/bytes.js';
import type { EncodeOptions, PromptPart, Tokenizer } from './types.js';
import { InvalidArgumentError, ModelFormatError } from '../errors.js';

/** What a token is, as far as encoding and decoding care (GGUF's token_type values map onto these). */
export const PieceKind = {
  Normal: 0,
  /** <unk>: dropped by decode, never produced by a merge. */
  Unknown: 1,
  /** <s>, </s> and other control tokens: dropped by decode, never produced by a merge. */
  Control: 2,
  /** <0xXX>: one raw byte. */
  Byte: 3,
  /** Added tokens (GGUF USER_DEFINED): always matched whole in text, like HF added tokens and llama.cpp; decoded as text. */
  UserDefined: 4,
} as const;
export type PieceKind = (typeof PieceKind)[keyof typeof PieceKind];

export interface SentencePieceVocab {
  /** UTF-8 bytes of each id's piece as the file stores it (`spaceSymbol` where the text has a space). */
  readonly pieces: readonly Uint8Array[];
  /** Merge priority of each id: higher merges first. */
  readonly scores: ArrayLike<number>;
  readonly kinds: ArrayLike<PieceKind>;
  /** ' ' in llama2.c's tokenizer.bin, '▁' (U+2581) in GGUF and SentencePiece vocabularies. */
  readonly spaceSymbol: string;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly unkTokenId: number | null;
  /** Whether encode prepends BOS by default. */
  readonly addBos: boolean;
  /** Whether encode prepends the dummy-prefix space to non-empty text (SentencePiece's add_dummy_prefix). */
  readonly addSpacePrefix: boolean;
  /** File name or model name for error messages. */
  readonly label: string;
}

/** llama2.c starts its best score at -1e10: a pair scoring at or below it is never merged. */
const MIN_MERGE_SCORE = -1e10;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** The raw byte a piece like "<0x0A>" stands for, or -1. */
export function bytePieceValue(piece: Uint8Array): number {
  if (piece.length !== 6) return -1;
  const m = BYTE_PIECE.exec(String.fromCharCode(...piece));
  return m ? parseInt(m[1], 16) : -1;
}

/** `bytes` with every occurrence of `from` replaced by the single byte `to`. */
function replaceBytes(bytes: Uint8Array, from: Uint8Array, to: number): Uint8Array {
  if (from.length === 1 && from[0] === to) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    let hit = from.length > 0 && i + from.length <= bytes.length;
    for (let j = 0; hit && j < from.length; j++) hit = bytes[i + j] === from[j];
    if (hit) {
      out.push(to);
      i += from.length;
    } else {
      out.push(bytes[i++]);
    }
  }
  return Uint8Array.from(out);
}

/** A string with one char code (0..255) per byte: lets Map keys compare byte sequences exactly. */
function binaryString(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

export class SentencePieceBpe implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly label: string;
  private readonly scores: Float64Array; // (vocab)
  private readonly kinds: Uint8Array; // (vocab) PieceKind
  /** Binary-string key of each piece, for building merge candidates. */
  private readonly keys: string[]; // (vocab)
  /** Key -> id over the pieces encode may produce (normal ones); the lowest id wins a duplicate, like a stable lookup. */
  private readonly lookup = new Map<string, number>();
  /** Id of each byte's <0xXX> piece, or the unknown id, or -1 when there is neither. */
  private readonly byteIds = new Int32Array(256); // (256)
  /** UTF-8 bytes each id decodes to, spaces restored. */
  private readonly decodeBytes: Uint8Array[]; // (vocab)
  private readonly spaceKey: string;
  /** Text -> id of user-defined, control and unknown tokens, for splitting them out of text. */
  private readonly specialIds = new Map<string, number>();
  /** Text -> id of control and unknown tokens: what parseSpecial and chat templates may produce. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** A capturing alternation of user-defined token texts (always split), or null when there are none. */
  private readonly userDefinedSplit: RegExp | null;
  /** The same over user-defined, control and unknown token texts (chat prompts; llama.cpp's special-token cache). */
  private readonly allSpecialSplit: RegExp | null;
  private readonly spaceSymbol: string;
  private readonly addBos: boolean;
  private readonly addSpacePrefix: boolean;

  constructor(vocab: SentencePieceVocab) {
    const n = vocab.pieces.length;
    this.label = vocab.label;
    if (vocab.scores.length !== n || vocab.kinds.length !== n) {
      throw new ModelFormatError(
        `${vocab.label}: ${n} tokens but ${vocab.scores.length} scores and ${vocab.kinds.length} token types; ` +
          `the vocabulary is inconsistent: re-export or download the model again.`,
      );
    }
    for (const [name, id] of [['BOS', vocab.bosTokenId], ['UNK', vocab.unkTokenId]] as const) {
      if (id !== null && !(Number.isInteger(id) && id >= 0 && id < n)) {
        throw new ModelFormatError(`${vocab.label}: ${name} id ${id} is outside the vocabulary of ${n} tokens.`);
      }
    }
    for (const id of vocab.eosTokenIds) {
      if (!(Number.isInteger(id) && id >= 0 && id < n)) {
        throw new ModelFormatError(`${vocab.label}: EOS id ${id} is outside the vocabulary of ${n} tokens.`);
      }
    }
    this.vocabSize = n;
    this.bosTokenId = vocab.bosTokenId;
    this.eosTokenIds = [...vocab.eosTokenIds];
    this.addBos = vocab.addBos;
    this.addSpacePrefix = vocab.addSpacePrefix;
    this.spaceSymbol = vocab.spaceSymbol;
    const spaceBytes = utf8.encode(vocab.spaceSymbol);
    this.spaceKey = binaryString(spaceBytes);
    this.scores = Float64Array.from(vocab.scores);
    this.kinds = Uint8Array.from(vocab.kinds);
    this.keys = new Array<string>(n);
    this.decodeBytes = new Array<Uint8Array>(n);
    this.byteIds.fill(vocab.unkTokenId ?? -1);
    const empty = new Uint8Array(0);
    for (let id = n - 1; id >= 0; id--) {
      const piece = vocab.pieces[id];
      const kind = this.kinds[id] as PieceKind;
      this.keys[id] = binaryString(piece);
      if (kind === PieceKind.Byte) {
        const b = bytePieceValue(piece);
        if (b < 0) {
          throw new ModelFormatError(
            `${vocab.label}: token ${id} is marked as a byte token but its piece is ` +
              `${JSON.stringify(new TextDecoder().decode(piece))}, not <0xXX>; the vocabulary is corrupt.`,
          );
        }
        this.byteIds[b] = id;
        this.decodeBytes[id] = Uint8Array.of(b);
      } else if (kind === PieceKind.Normal) {
        this.lookup.set(this.keys[id], id);
        this.decodeBytes[id] = replaceBytes(piece, spaceBytes, 0x20);
      } else if (kind === PieceKind.UserDefined) {
        this.decodeBytes[id] = replaceBytes(piece, spaceBytes, 0x20);
      } else {
        this.decodeBytes[id] = empty;
      }
    }
    const userDefined: string[] = [];
    const control: string[] = [];
    for (let id = 0; id < n; id++) {
      const kind = this.kinds[id] as PieceKind;
      if (kind !== PieceKind.UserDefined && kind !== PieceKind.Control && kind !== PieceKind.Unknown) continue;
      const text = new TextDecoder().decode(vocab.pieces[id]);
      if (text.length === 0 || this.specialIds.has(text)) continue;
      this.specialIds.set(text, id);
      (kind === PieceKind.UserDefined ? userDefined : control).push(text);
    }
    this.userDefinedSplit = alternation(userDefined);
    this.allSpecialSplit = alternation([...userDefined, ...control]);
    this.specialTokens = new Map(control.map((t) => [t, this.specialIds.get(t)!]));
  }

  /** The piece text of `id` as stored (spaces as the vocabulary's space symbol), or undefined outside the vocabulary. */
  piece(id: number): string | undefined {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) return undefined;
    return new TextDecoder().decode(Uint8Array.from(this.keys[id], (c) => c.charCodeAt(0)));
  }

  /**
   * Control-token text ("<s>", "</s>", "<|im_start|>") stays text unless `parseSpecial` (llama.cpp's parse_special);
   * user-defined tokens are always matched whole, as llama.cpp and HF tokenizers do.
   */
  encode(text: string, options?: EncodeOptions): number[] {
    return this.encodeSplitting(text, options?.addBos !== false, options?.parseSpecial ? this.allSpecialSplit : this.userDefinedSplit);
  }

  encodeParts(parts: readonly PromptPart[], options?: { addBos?: boolean }): number[] {
    const out: number[] = [];
    if (this.addBos && options?.addBos !== false && this.bosTokenId !== null) out.push(this.bosTokenId);
    let afterToken = true;
    for (const part of parts) {
      if (typeof part === 'number') {
        if (!(Number.isInteger(part) && part >= 0 && part < this.vocabSize))
          throw new InvalidArgumentError(`${this.label}: token id ${part} is outside the vocabulary (0..${this.vocabSize - 1}).`);
        out.push(part);
        afterToken = true;
      } else if (part.length > 0) {
        afterToken = this.encodeText(part, afterToken, this.userDefinedSplit, out);
      }
    }
    return out;
  }

  /**
   * Text between matched tokens is encoded fragment by fragment; a fragment after a matched token (or at the start)
   * gets the dummy-prefix space, as llama.cpp does and as HF's per-section Prepend normalizer does.
   */
  private encodeSplitting(text: string, addBos: boolean, split: RegExp | null): number[] {
    const out: number[] = [];
    if (this.addBos && addBos && this.bosTokenId !== null) out.push(this.bosTokenId);
    this.encodeText(text, true, split, out);
    return out;
  }

  /** Appends `text`'s tokens, splitting out `split`'s matches; returns whether it ended on a matched token. */
  private encodeText(text: string, afterToken: boolean, split: RegExp | null, out: number[]): boolean {
    if (split === null) {
      this.encodeFragment(text, this.addSpacePrefix && afterToken, out);
      return afterToken && text.length === 0;
    }
    const parts = text.split(split); // odd indices are the matched token texts
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i % 2 === 1) {
        out.push(this.specialIds.get(part) as number);
        afterToken = true;
      } else if (part.length > 0) {
        this.encodeFragment(part, this.addSpacePrefix && afterToken, out);
        afterToken = false;
      }
    }
    return afterToken;
  }

  /** Appends the tokens of `text` (no BOS) to `out`; `spacePrefix` adds the dummy-prefix space to non-empty text. */
  private encodeFragment(text: string, spacePrefix: boolean, out: number[]): void {
    if (text.length === 0) return;
    const bytes = utf8.encode(text.split(' ').join(this.spaceSymbol));
    const ids: number[] = [];
    if (spacePrefix) {
      const id = this.lookup.get(this.spaceKey);
      if (id !== undefined) ids.push(id);
      else this.pushBytes(utf8.encode(this.spaceSymbol), ids);
    }
    // One lookup per UTF-8 character (llama2.c caps a character at 4 bytes), raw bytes when it is not a piece.
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end] & 0xc0) === 0x80 && end - start < 4) end++;
      const ch = bytes.subarray(start, end);
      const id = this.lookup.get(binaryString(ch));
      if (id !== undefined) ids.push(id);
      else this.pushBytes(ch, ids);
      start = end;
    }
    this.merge(ids);
    for (const id of ids) out.push(id);
  }

  private pushBytes(bytes: Uint8Array, ids: number[]): void {
    for (const b of bytes) {
      const id = this.byteIds[b];
      if (id < 0) {
        throw new InvalidArgumentError(
          `${this.label}: the byte 0x${b.toString(16).padStart(2, '0')} has no <0x..> token and the vocabulary has ` +
            `no <unk>; this text cannot be encoded with this tokenizer. Remove the character or use another model.`,
        );
      }
      ids.push(id);
    }
  }

  /** In place: merges of the best-scoring adjacent pair, leftmost on ties, until none is a piece. */
  private merge(ids: number[]): void {
    const n = ids.length;
    if (n < 2) return;
    const next = new Int32Array(n); // (n) index of the right neighbour, -1 at the end
    const prev = new Int32Array(n); // (n) index of the left neighbour, -1 at the start
    const version = new Uint32Array(n); // (n) bumped when a symbol changes, to discard stale heap entries
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new PairHeap();
    const consider = (left: number): void => {
      const right = next[left];
      if (right < 0) return;
      const merged = this.lookup.get(this.keys[ids[left]] + this.keys[ids[right]]);
      if (merged === undefined || !(this.scores[merged] > MIN_MERGE_SCORE)) return;
      heap.push({ score: this.scores[merged], left, right, merged, vLeft: version[left], vRight: version[right] });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (;;) {
      const top = heap.pop();
      if (top === undefined) break;
      const { left, right } = top;
      if (!alive[left] || !alive[right] || next[left] !== right) continue;
      if (version[left] !== top.vLeft || version[right] !== top.vRight) continue;
      ids[left] = top.merged;
      version[left]++;
      alive[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      if (prev[left] >= 0) consider(prev[left]);
      consider(left);
    }
    let w = 0;
    for (let i = 0; i >= 0; i = next[i]) ids[w++] = ids[i];
    ids.length = w;
  }

  decode(ids: readonly number[]): string {
    let text = '';
    let segment: Uint8Array[] = [];
    let afterBos = false;
    const flush = (): void => {
      let s = new TextDecoder().decode(concatBytes(segment));
      if (afterBos && s.startsWith(' ')) s = s.slice(1);
      text += s;
      segment = [];
    };
    for (const id of ids) {
      if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
        throw new InvalidArgumentError(
          `${this.label}: cannot decode token id ${id}: the vocabulary has ids 0..${this.vocabSize - 1}. ` +
            `Mask logits beyond the tokenizer's vocabulary before sampling.`,
        );
      }
      if (id === this.bosTokenId) {
        flush();
        afterBos = true;
      } else {
        segment.push(this.decodeBytes[id]);
      }
    }
    flush();
    return text;
  }
}

/** A regex whose split() keeps the matched strings, longest first so "<|a|>x" beats "<|a|>". */
function alternation(texts: string[]): RegExp | null {
  if (texts.length === 0) return null;
  const sorted = [...texts].sort((a, b) => b.length - a.length);
  return new RegExp(`(${sorted.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'u');
}

interface Pair {
  score: number;
  /** Symbol indices; the left index orders ties because merges never reorder symbols. */
  left: number;
  right: number;
  merged: number;
  vLeft: number;
  vRight: number;
}

/** Binary max-heap on score, then min on left index (llama2.c takes the first pair with the best score). */
class PairHeap {
  private readonly items: Pair[] = [];

  private before(a: Pair, b: Pair): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(p: Pair): void {
    const h = this.items;
    h.push(p);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  pop(): Pair | undefined {
    const h = this.items;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop() as Pair;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && this.before(h[l], h[best])) best = l;
        if (r < h.length && this.before(h[r], h[best])) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best], h[i]];
        i = best;
      }
    }
    return top;
  }
}
