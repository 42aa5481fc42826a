// Each token's own text and bytes (logprobs, `generate --json` token_texts): over any id sequence, the tokens' bytes
// concatenated are exactly the UTF-8 of the decoded text, so byte-fallback pieces and space markers are right; a
// piece of a character is shown as OpenAI shows it.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenBytes, tokenText } from '../../src/api/token_text.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { loadStories, tokenizerFor } from '../model/models.js';

const formats = ['hf', 'llama2c', 'gguf'] as const;
const tokenizers = new Map<string, Tokenizer>();
beforeAll(async () => {
  for (const f of formats) tokenizers.set(f, tokenizerFor(await loadStories(f))!);
});

describe.each(formats)('token text and bytes (stories260K %s tokenizer)', (format) => {
  it('concatenated token bytes are the UTF-8 of decode() for random id sequences', () => {
    const tok = tokenizers.get(format)!;
    const special = new Set([tok.bosTokenId, ...tok.eosTokenIds, 0]);
    const id = fc.integer({ min: 0, max: tok.vocabSize - 1 }).filter((i) => !special.has(i));
    fc.assert(
      fc.property(fc.array(id, { minLength: 1, maxLength: 12 }), (ids) => {
        // decode() turns an unfinished UTF-8 sequence into U+FFFD, as a non-fatal UTF-8 decoder does to the bytes.
        const bytes = ids.flatMap((i) => [...tokenBytes(tok, i)]);
        expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(tok.decode(ids));
      }),
      { numRuns: 300 },
    );
  });

  it("a byte piece that is part of a character is 'bytes:\\xNN'; a whole piece is its text", () => {
    const tok = tokenizers.get(format)!;
    // A CJK character (three bytes) after the dummy-prefix space: byte-fallback pieces in this 512-token vocabulary.
    const ids = tok.encode('\u4e2d', { addBos: false });
    const pieces = ids.map((i) => tokenText(tok, i));
    expect(pieces.flatMap((p) => p.bytes)).toEqual([0x20, 0xe4, 0xb8, 0xad]);
    expect(pieces.slice(-3).map((p) => p.token)).toEqual(['bytes:\\xe4', 'bytes:\\xb8', 'bytes:\\xad']);
    const once = tok.encode(' Once', { addBos: false });
    expect(once.map((i) => tokenText(tok, i).token).join('')).toBe(tok.decode(once));
  });
});
