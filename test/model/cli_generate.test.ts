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

describe('generate --mode peaks --schedule', () => {
  async function peaks(extra: string[]): Promise<{ code: number; doc: any; err: string }> {
    const c = capture();
    const argv = ['generate', '--mode', 'peaks', '--model', STORIES_FORMATS.hf(), '--initial-traces', '2', '--max-traces', '4', '--max-new-tokens', '24', '--seed', '5', '--prompt', 'Lily saw a', '--json', ...extra];
    const code = await main(argv, c.io);
    return { code, doc: JSON.parse(c.out.join('')), err: c.err.join('') };
  }

  it('runs either schedule (online by default), with the same root traces, and refuses another', async () => {
    const online = await peaks([]);
    const rounds = await peaks(['--schedule', 'rounds']);
    expect(online.code, online.err).toBe(0);
    expect(rounds.code, rounds.err).toBe(0);
    expect(online.doc.params.schedule).toBe('online');
    expect(rounds.doc.params.schedule).toBe('rounds');
    // Roots depend only on prompt, parameters and seed, not on when branches start.
    const roots = (d: any) => d.traces.filter((t: any) => t.parent_id === null || t.parent_id === undefined).map((t: any) => t.tokens);
    expect(roots(rounds.doc).length).toBe(2);
    expect(roots(online.doc)).toEqual(roots(rounds.doc));
    const bad = await peaks(['--schedule', 'eager']);
    expect(bad.code).toBe(2);
    expect(bad.doc.error.message).toMatch(/online|rounds/); // with --json the error is the document
  });
});
