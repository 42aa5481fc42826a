// Prompts of exact token lengths, with no Node API: the Node benches (bench/bench_models.ts) and the Chromium page
// (bench/browser_page/) build the same prompts from here, so their numbers pair up.
import type { Tokenizer } from '../../src/tokenizer/types.js';

// A short story in TinyStories' style, written for these benchmarks; repeated when a prompt needs more tokens.
export const STORY =
  'Once upon a time, in a small town near the sea, there lived a little girl named Lily. She loved to play in the ' +
  'park with her red ball and her best friend, a fluffy dog called Max. One sunny day, Lily and Max went to the park ' +
  'to play. They ran and jumped and laughed all morning. Then Lily threw the ball very high, and it landed in a big ' +
  'tree. Max barked at the tree, but the ball did not come down. Lily was sad. She looked around and saw an old man ' +
  'sitting on a bench. "Can you help me get my ball?" she asked. The old man smiled and said, "Yes, I can help you." ' +
  'He took his long stick and gently pushed the ball out of the tree. The ball fell down, and Max caught it in his ' +
  'mouth. Lily was very happy. She said, "Thank you, kind man!" The old man told her that it is good to ask for help ' +
  'when you need it. Lily hugged Max, and they went home to eat lunch with mom. After lunch, Lily drew a picture of ' +
  'the tree, the ball and the kind old man, and she gave it to her mom.';

/** Exactly `n` prompt tokens of the story: the story from BOS (as the tokenizer adds it), then repeats without BOS. */
export function storyTokens(tokenizer: Tokenizer, n: number): number[] {
  const out = [...tokenizer.encode(STORY)];
  const more = tokenizer.encode(` ${STORY}`, { addBos: false });
  if (more.length === 0) throw new Error('storyTokens: the tokenizer encoded the story to nothing');
  while (out.length < n) out.push(...more);
  return out.slice(0, n);
}

/**
 * Exactly `n` seeded pseudo-random ids for a model without a tokenizer (random weights): `bos` first, then ids that
 * avoid BOS/EOS and the low ids that are often special in real vocabularies.
 */
export function randomTokens(vocabSize: number, bos: number, n: number, seed = 1): number[] {
  const out = [bos];
  let x = (seed * 2654435761) >>> 0;
  while (out.length < n) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.push(3 + (x % (vocabSize - 3)));
  }
  return out;
}
