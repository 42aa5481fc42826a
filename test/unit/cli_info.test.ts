// `forklm info` (no GPU), the families in `forklm --help`, and `generate --prompt-ids` parsing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePromptIds } from '../../src/cli/generate.js';
import { main } from '../../src/cli/main.js';
import { loadEngine } from '../../src/engine_load.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { FAMILIES } from '../../src/model/spec.js';
import { sharedModelsDir } from '../ref/shared_models.js';

const fixtures = join(sharedModelsDir(), '../fixtures');
const archDir = join(fixtures, 'arch');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env: {} }, out, err };
}

/** Parameters as the safetensors header lists them: the sum of every tensor's element count (read independently). */
function headerParameters(file: string): number {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape?: number[] }>;
  return Object.entries(header).filter(([k]) => k !== '__metadata__').reduce((s, [, t]) => s + t.shape!.reduce((a, d) => a * d, 1), 0);
}

async function info(model: string): Promise<Record<string, any>> {
  const c = capture();
  expect(await main(['info', '--model', model, '--json'], c.io), c.err.join('') + c.out.join('')).toBe(0);
  return JSON.parse(c.out.join(''));
}

async function infoWith(model: string, ...flags: string[]): Promise<Record<string, any>> {
  const c = capture();
  expect(await main(['info', '--model', model, '--json', ...flags], c.io), c.err.join('') + c.out.join('')).toBe(0);
  return JSON.parse(c.out.join(''));
}

describe('forklm info: weight bytes', () => {
  const quantized = readdirSync(join(fixtures, 'gguf')).filter((f) => /^(llama256-Q|stories260K-Q).*\.gguf$/.test(f)).sort();

  it.each(quantized)('%s: GPU bytes as stored <= 1.05 x the file\'s tensor bytes; f32 widens', async (file) => {
    const path = join(fixtures, 'gguf', file);
    const j = await infoWith(path);
    const size = readFileSync(path).length;
    // The tensors are most of a small-vocabulary file: the rest is the header (vocabulary, metadata) and padding.
    expect(j.weights.file_tensor_bytes).toBeLessThanOrEqual(size);
    expect(j.weights.file_tensor_bytes).toBeGreaterThan(0.85 * size);
    expect(j.weights.gpu_bytes).toBeLessThanOrEqual(1.05 * j.weights.file_tensor_bytes);
    expect(Object.keys(j.weights.gpu_matrix_bytes_by_type).some((t) => t.startsWith('Q'))).toBe(true);
    const f32 = await infoWith(path, '--weights', 'f32');
    expect(Object.keys(f32.weights.gpu_matrix_bytes_by_type)).toEqual(['F32']);
    // 4 bytes per parameter of the matrices (the norms were f32 already), at least 3.5x a file of <= 8.5 bits a value.
    expect(f32.weights.gpu_bytes).toBeGreaterThan(3.5 * j.weights.gpu_bytes * (file.includes('Q8_0') ? 0.5 : 1));
  });

  it('keeps 16-bit safetensors 16-bit (bf16 and f16 arch folders), and f32 doubles them', async () => {
    for (const folder of ['llama3-rope-bf16', 'qwen3-qknorm-headdim', 'mistral-window', 'gpt-neox-parallel']) {
      const j = await infoWith(join(archDir, folder));
      expect(j.dtype, folder).toMatch(/^(BF16|F16)/);
      expect(j.weights.gpu_bytes, folder).toBeLessThanOrEqual(1.05 * j.weights.file_tensor_bytes);
      const f32 = await infoWith(join(archDir, folder), '--weights', 'f32');
      expect(f32.weights.gpu_bytes / j.weights.gpu_bytes, folder).toBeGreaterThan(1.9);
    }
  });
});

describe('forklm info', () => {
  it('counts every parameter of every arch folder (the file header agrees) and names its family and dtype', async () => {
    for (const folder of readdirSync(archDir).sort()) {
      const ref = JSON.parse(readFileSync(join(archDir, folder, 'reference.json'), 'utf8'));
      const j = await info(join(archDir, folder));
      expect(j.parameters, folder).toBe(headerParameters(join(archDir, folder, 'model.safetensors')));
      expect(j.dtype, folder).toBe({ float32: 'F32', bfloat16: 'BF16', float16: 'F16' }[ref.dtype as string]);
      expect(j.architecture, folder).toBe(ref.model_type);
      expect(j.context, folder).toBe(512);
    }
  });

  it('shows Gemma 3\'s layer kinds with their own RoPE, as JSON and as text', async () => {
    const j = await info(join(archDir, 'gemma3'));
    expect(j.family).toBe('gemma3');
    expect(j.layer_kinds.map((k: any) => [k.attention, k.window, k.rope.theta, k.layers])).toEqual([
      ['sliding', 16, 10000, [0, 1]],
      ['global', null, 1000000, [2]],
    ]);
    const c = capture();
    expect(await main(['info', '--model', join(archDir, 'gemma3')], c.io)).toBe(0);
    const text = c.out.join('');
    expect(text).toMatch(/layers 0-1 +sliding window 16; rope theta 10000, rotary 32 dims/);
    expect(text).toMatch(/layers 2 +global; rope theta 1000000, rotary 32 dims/);
    expect(text).toMatch(/q\/k norm per head/);
  });

  it('shows a GGUF file\'s RoPE frequency factors, NoPE layers and learned positions', async () => {
    const l3 = await info(join(fixtures, 'gguf', 'arch-llama3-rope-bf16.gguf'));
    expect([l3.format, l3.dtype, l3.layer_kinds.length]).toEqual(['gguf', 'F32', 1]);
    expect(l3.layer_kinds[0].rope.freqFactors).toHaveLength(8);
    const smol = await info(join(archDir, 'smollm3-nope'));
    expect(smol.layer_kinds.map((k: any) => [k.rope === null, k.layers])).toEqual([[false, [0, 2]], [true, [1]]]);
    const gpt2 = await info(join(archDir, 'gpt2'));
    expect(gpt2.spec.positions).toBe('learned');
    expect(gpt2.layer_kinds[0].description).toBe('global; learned positions');
  });

  it('refuses a model it cannot read with the loader\'s typed error', async () => {
    const c = capture();
    expect(await main(['info', '--model', join(fixtures, 'gguf', 'no-such.gguf'), '--json'], c.io)).toBe(1);
    expect(JSON.parse(c.out.join('')).error.code).toBe('MODEL_NOT_FOUND');
  });

  it('loadEngine refuses a weights mode it does not know before reading the file (the CLI checks its flag itself)', async () => {
    for (const weights of ['bogus', 'F16', 'as_stored']) {
      const err = await loadEngine(join(fixtures, 'gguf', 'no-such.gguf'), { weights: weights as never }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError); // not MODEL_NOT_FOUND: the option is checked first
      expect((err as InvalidArgumentError).param).toBe('weights');
      expect((err as Error).message).toContain("'as-stored', 'f16', 'f32'");
    }
  });
});

describe('the command line lists the families and takes prompts as ids', () => {
  it('lists every supported family in --help', async () => {
    const c = capture();
    expect(await main(['--help'], c.io)).toBe(0);
    const help = c.out.join('');
    for (const f of FAMILIES) expect(help).toMatch(new RegExp(`\\n  ${f} +\\S`));
    expect(help).toMatch(/info +Show what a model resolves to/);
  });

  it('parses --prompt-ids and names a bad entry', async () => {
    expect(parsePromptIds('1, 403,407')).toEqual([1, 403, 407]);
    expect(() => parsePromptIds('1,x')).toThrow(/entry 2 is "x"/);
    expect(() => parsePromptIds('1,-2')).toThrow(/entry 2 is "-2"/);
    expect(() => parsePromptIds('')).toThrow(/--prompt-ids is empty/);
    const c = capture();
    expect(await main(['generate', '--prompt-ids', '1,2.5', '--model', 'no-such-model'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/entry 2 is "2.5"/);
  });
});
