// `forklm generate --prompt-ids` on the GPU: exact ids give the same greedy continuation as the text they encode, and
// a prompt given as ids needs no tokenizer.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { STORIES_FORMATS, loadStories, referenceGreedy, tokenizerFor } from './models.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env: {} }, out, err };
}

async function greedy(args: string[]): Promise<{ tokens: number[]; text: string | null }> {
  const c = capture();
  const code = await main(['generate', '--mode', 'greedy', '--model', STORIES_FORMATS.hf(), '--max-new-tokens', '12', '--json', ...args], c.io);
  expect(code, c.err.join('') + c.out.join('')).toBe(0);
  return JSON.parse(c.out.join(''));
}

describe('generate --prompt-ids', () => {
  it('continues exact ids as llama2.c does, and as the text they encode', async () => {
    const ref = referenceGreedy();
    const fromRefIds = await greedy(['--prompt-ids', ref.prompt_token_ids.join(',')]);
    expect(ref.expected_text.startsWith(fromRefIds.text!)).toBe(true);
    expect(fromRefIds.text!.length).toBeGreaterThan(10);
    const ids = tokenizerFor(await loadStories('hf'))!.encode('Lily saw a');
    const fromIds = await greedy(['--prompt-ids', ids.join(',')]);
    const fromText = await greedy(['--prompt', 'Lily saw a']);
    expect(fromIds.tokens).toEqual(fromText.tokens);
    expect(fromIds.text).toBe(fromText.text);
  });

  it('refuses ids outside the vocabulary and a prompt given twice', async () => {
    const bad = capture();
    expect(await main(['generate', '--model', STORIES_FORMATS.hf(), '--prompt-ids', '1,512'], bad.io)).toBe(2);
    expect(bad.err.join('')).toMatch(/token id 512 is outside the vocabulary/);
    const both = capture();
    expect(await main(['generate', '--model', STORIES_FORMATS.hf(), '--prompt-ids', '1', '--prompt', 'x'], both.io)).toBe(2);
    expect(both.err.join('')).toMatch(/either --prompt or --prompt-ids/);
  });
});
