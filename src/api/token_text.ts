// A token's own bytes and text, for logprobs: OpenAI's `token`, `bytes` and `top_logprobs[].token`.
//
// A token need not be valid UTF-8 on its own: SentencePiece byte-fallback pieces ("<0xE2>") and byte-level BPE pieces
// carry single bytes of a multi-byte character. Its bytes come from the vocabulary piece where the piece says what
// they are, else from decode([id]); its text is those bytes as UTF-8 when they are valid, and otherwise OpenAI's
// convention for partial characters, "bytes:\xe2\x80" (the bytes escaped).
import type { Tokenizer } from '../tokenizer/types.js';

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** GPT-2's bytes_to_unicode, inverted: the printable character a byte-level BPE vocabulary stores for each byte. */
const byteLevelChars: Map<number, number> = (() => {
  const bytes: number[] = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = [...bytes];
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + n++);
    }
  return new Map(chars.map((c, i) => [c, bytes[i]]));
})();

/** The vocabulary piece of `id` when the tokenizer exposes it (HF and SentencePiece tokenizers do). */
function pieceOf(tokenizer: Tokenizer, id: number): string | undefined {
  const t = tokenizer as Tokenizer & { piece?: (id: number) => string | undefined };
  return typeof t.piece === 'function' ? t.piece(id) : undefined;
}

/** The bytes token `id` adds to a text. */
export function tokenBytes(tokenizer: Tokenizer, id: number): Uint8Array {
  const piece = pieceOf(tokenizer, id);
  const byte = piece !== undefined ? BYTE_PIECE.exec(piece) : null;
  if (byte) return Uint8Array.of(parseInt(byte[1], 16));
  const text = tokenizer.decode([id]);
  if (!text.includes('\uFFFD')) return utf8.encode(text);
  // A byte-level BPE piece holding part of a character: map its characters back to bytes.
  if (piece !== undefined && [...piece].every((c) => byteLevelChars.has(c.codePointAt(0)!)))
    return Uint8Array.from([...piece], (c) => byteLevelChars.get(c.codePointAt(0)!)!);
  return utf8.encode(text);
}

/** A token's text and bytes as OpenAI's logprobs report them. */
export function tokenText(tokenizer: Tokenizer, id: number): { token: string; bytes: number[] } {
  const bytes = tokenBytes(tokenizer, id);
  let token: string;
  try {
    token = strictUtf8.decode(bytes);
  } catch {
    token = 'bytes:' + Array.from(bytes, (b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
  }
  return { token, bytes: Array.from(bytes) };
}
