// `forklm serve` on stories260K, driven by the official `openai` npm client (a client nobody here wrote): n = 4
// streamed and not, logprobs with 20 alternatives, stop strings across tokens, seed replay, chat with a template,
// 8 concurrent clients sharing steps with the results they get alone, a disconnecting client freeing its pages, and
// malformed requests answered with OpenAI errors while the server keeps serving.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
const PROMPT = 'Once upon a time, there was a little girl named Lily. She liked to play outside.';

let proc: ChildProcess;
let base: string;
let client: OpenAI;

interface Health {
  status: string;
  active_requests: number;
  engine: { steps: number; rows: number; pages_in_use: number };
}
const health = async (): Promise<Health> => (await fetch(`${base}/health`)).json() as Promise<Health>;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'forklm-serve-'));
  const templateFile = join(dir, 'template.jinja');
  writeFileSync(templateFile, TEMPLATE);
  const script = "import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1))).then((c) => process.exit(c))";
  proc = spawn(process.execPath, ['--import', 'tsx', '-e', script, 'serve', '--model', 'stories260K', '--port', '0', '--chat-template', templateFile], {
    cwd: root,
    env: { ...process.env, FORKLM_ADAPTER: process.env.FORKLM_ADAPTER ?? 'llvmpipe' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  base = await new Promise<string>((ok, fail) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /on (http:\/\/\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    proc.once('exit', (code) => fail(new Error(`forklm serve exited with ${code}: ${err}`)));
  });
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
});

describe('forklm serve with the openai client', () => {
  it('lists its model, binds to 127.0.0.1, and reports health', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['stories260K']);
    expect((await health()).status).toBe('ok');
  });

  it('n = 4, streamed and not: the same four texts, chunks carrying their choice index; seeds replay', async () => {
    const body = { model: 'stories260K', prompt: PROMPT, n: 4, max_tokens: 24, seed: 11, temperature: 1 };
    const whole = await client.completions.create(body);
    expect(whole.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(whole.choices.map((c) => c.text)).size).toBe(4);
    const again = await client.completions.create(body);
    expect(again.choices.map((c) => c.text)).toEqual(whole.choices.map((c) => c.text));
    expect(again.usage!.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0);
    const other = await client.completions.create({ ...body, seed: 12 });
    expect(other.choices.map((c) => c.text)).not.toEqual(whole.choices.map((c) => c.text));
    const stream = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    const texts = ['', '', '', ''];
    let usage: OpenAI.CompletionUsage | null = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) texts[c.index] += c.text;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual(whole.choices.map((c) => c.text));
    // The same tokens; only the cached share differs (this time the prompt's full pages were in the prefix cache).
    expect([usage!.prompt_tokens, usage!.completion_tokens]).toEqual([whole.usage!.prompt_tokens, whole.usage!.completion_tokens]);
  });

  it('logprobs with 20 alternatives, each with its text and bytes', async () => {
    const r = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Tell me a story about a dog.' }],
      max_completion_tokens: 10,
      seed: 2,
      logprobs: true,
      top_logprobs: 20,
    });
    const content = r.choices[0].logprobs!.content!;
    expect(content.map((t) => t.token).join('')).toBe(r.choices[0].message.content);
    for (const t of content) {
      expect(t.top_logprobs.length).toBe(20);
      expect(Buffer.from(t.bytes!).toString('utf8')).toBe(t.token);
      expect(t.logprob).toBeLessThanOrEqual(0);
      // The list is sorted and the drawn token, when in it, has its own logprob there.
      for (let i = 1; i < 20; i++) expect(t.top_logprobs[i].logprob).toBeLessThanOrEqual(t.top_logprobs[i - 1].logprob);
      const same = t.top_logprobs.find((a) => a.token === t.token);
      if (same) expect(same.logprob).toBeCloseTo(t.logprob, 6);
    }
  });

  it('stop strings that span tokens cut the text exactly', async () => {
    const plain = await client.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 40, temperature: 0, logprobs: 0 });
    const { text_offset } = plain.choices[0].logprobs!;
    const at = text_offset![5];
    const text = plain.choices[0].text;
    const stop = text.slice(at - 2, at + 3);
    const cut = text.slice(0, text.indexOf(stop));
    const r = await client.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 40, temperature: 0, stop: [stop] });
    expect(r.choices[0].text).toBe(cut);
    expect(r.choices[0].finish_reason).toBe('stop');
    let streamed = '';
    for await (const c of await client.completions.create({ model: 'stories260K', prompt: PROMPT, max_tokens: 40, temperature: 0, stop, stream: true }))
      streamed += c.choices[0]?.text ?? '';
    expect(streamed).toBe(cut);
  });

  it('chat through the template given with --chat-template', async () => {
    const chat = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'A story about a cat.' }],
      max_completion_tokens: 16,
      temperature: 0,
    });
    const plain = await client.completions.create({ model: 'stories260K', prompt: 'user: A story about a cat.\nassistant:', max_tokens: 16, temperature: 0 });
    expect(chat.choices[0].message.content).toBe(plain.choices[0].text);
    expect(chat.choices[0].message.role).toBe('assistant');
  });

  it('8 concurrent clients share steps and get what they get alone', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => ({
      model: 'stories260K',
      prompt: i % 2 ? PROMPT : `Tom saw a ${['cat', 'dog', 'bird', 'fish'][i % 4]}.`,
      max_tokens: 16 + i,
      n: 1 + (i % 3),
      seed: 100 + i,
    }));
    const alone: OpenAI.Completion[] = [];
    let aloneSteps = 0;
    for (const b of bodies) {
      const s0 = (await health()).engine.steps;
      alone.push(await client.completions.create(b));
      aloneSteps += (await health()).engine.steps - s0;
    }
    const s0 = (await health()).engine.steps;
    const together = await Promise.all(bodies.map((b) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 }).completions.create(b)));
    const steps = (await health()).engine.steps - s0;
    together.forEach((r, i) => expect(r.choices.map((c) => c.text)).toEqual(alone[i].choices.map((c) => c.text)));
    // Batched: far fewer steps than one after another (at least the longest request's 23 tokens + its prompt).
    expect(steps).toBeLessThan(aloneSteps / 3);
    expect(steps).toBeGreaterThanOrEqual(23);
  });

  it('a client that disconnects mid-stream cancels its request and frees its pages', async () => {
    const stream = await client.completions.create({ model: 'stories260K', prompt: PROMPT, n: 4, max_tokens: 250, stream: true });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 4) break; // the SDK aborts the HTTP request
    const stepsAtBreak = (await health()).engine.steps;
    let h = await health();
    for (let i = 0; i < 50 && (h.active_requests > 0 || h.engine.pages_in_use > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      h = await health();
    }
    expect(h.active_requests).toBe(0);
    expect(h.engine.pages_in_use).toBe(0);
    // Freed by the cancel, not by finishing: 4 samples of up to 250 tokens would take ~250 more steps (all four
    // ending at EOS within 60 steps is far from what stories260K does from this prompt).
    expect(h.engine.steps - stepsAtBreak).toBeLessThan(60);
  });

  it('malformed requests get OpenAI errors with the right status, and the server keeps serving', async () => {
    const raw = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt": "a",' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const fails = async (p: Promise<unknown>) => {
      const e = await p.then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(OpenAI.APIError);
      return e as InstanceType<typeof OpenAI.APIError>;
    };
    const n0 = await fails(client.completions.create({ model: 'stories260K', prompt: 'a', n: 0 }));
    expect([n0.status, n0.param]).toEqual([400, 'n']);
    const top = await fails(
      client.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: 'a' }], logprobs: true, top_logprobs: 21 }),
    );
    expect([top.status, top.param]).toEqual([400, 'top_logprobs']);
    const model = await fails(client.completions.create({ model: 'gpt-4o', prompt: 'a' }));
    expect([model.status, model.code]).toEqual([404, 'model_not_found']);
    const long = await fails(client.completions.create({ model: 'stories260K', prompt: 'Once upon a time '.repeat(200), max_tokens: 8 }));
    expect([long.status, long.code]).toEqual([400, 'context_length_exceeded']);
    const route = await fetch(`${base}/v1/embeddings`, { method: 'POST', body: '{}' });
    expect(route.status).toBe(404);
    const ok = await client.completions.create({ model: 'stories260K', prompt: 'Lily', max_tokens: 4 });
    expect(ok.choices[0].text.length).toBeGreaterThan(0);
    expect((await health()).engine.pages_in_use).toBe(0);
  });
});
