// Every quantized GGUF fixture (llama.cpp's own quantizations, ../shared/fixtures/gguf) through the spec, the weight
// loader and a float64 forward with weights dequantized by src/weights/dequant.ts, against llama.cpp's greedy tokens
// and top-5 log-probs on the same files. This pins the block formats end to end (every tensor of every mix: a Q4_K_M
// file's Q4_K and Q6_K, a Q4_0 file's Q6_K embedding, stories260K's F16 and Q8_0 fallbacks) without a GPU. The widening
// to f32 happens here, in the test's tensor provider (the GPU model keeps them quantized: gguf_quant_gpu.test.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGguf } from '../../src/io/gguf.js';
import { bytesEqual } from '../../src/io/bytes.js';
import { assembleModel, type TensorProvider } from '../../src/model/assemble.js';
import { specFromGguf } from '../../src/model/gguf_config.js';
import { dequantize } from '../../src/weights/dequant.js';
import { argmax } from '../ref/llama_ref.js';
import { ggufDir, ggufTolerance, logSoftmax, readGgufReference } from '../ref/gguf_reference.js';
import { specRefForward } from '../ref/spec_forward.js';

const FILES = readdirSync(ggufDir).filter((f) => /^(llama256|stories260K)-.*\.gguf$/.test(f)).sort();


async function dequantizedModel(file: string) {
  const g = await parseGguf(new Uint8Array(readFileSync(join(ggufDir, file))), file);
  const out = g.tensors.get('output.weight');
  const emb = g.tensors.get('token_embd.weight')!;
  // As the loader does: an output.weight that is a byte copy of the embedding is the tied embedding.
  const tied = !out || (out.ggmlType === emb.ggmlType && bytesEqual(g.rawBytes('output.weight'), g.rawBytes('token_embd.weight')));
  const provider: TensorProvider = {
    label: file,
    names: () => [...g.tensors.keys()],
    shape: (name) => (tied && name === 'output.weight' ? null : (g.tensors.get(name)?.shape ?? null)),
    read: (name) => {
      const t = g.stored(name);
      return Float32Array.from(dequantize(t.type, t.bytes, t.shape.reduce((a, b) => a * b, 1)));
    },
    dtype: (name) => g.tensors.get(name)?.typeName ?? 'F32',
  };
  const spec = specFromGguf(g.metadata, provider, file);
  return { weights: assembleModel(spec, 'gguf', provider).weights, types: new Set([...g.tensors.values()].map((t) => t.storage)) };
}

describe('quantized GGUF fixtures: float64 forward over the dequantized weights vs llama.cpp', () => {
  it('has llama256 in f32 and 9 quantizations, and stories260K Q8_0 / Q4_0', () => expect(FILES.length).toBe(12));

  it.each(FILES)('%s', async (file) => {
    const ref = readGgufReference(file);
    const { weights, types } = await dequantizedModel(file);
    const tol = ggufTolerance(file);
    if (!file.includes('-f32')) expect(types.size).toBeGreaterThanOrEqual(2); // every quantized fixture mixes types (norms stay F32)
    let worst = 0;
    for (const c of ref.cases) {
      const tokens = [...c.prompt_ids, ...c.greedy_ids];
      const got = specRefForward(weights, tokens.slice(0, -1));
      const P = c.prompt_ids.length;
      let j = 0;
      let tied = false;
      for (let i = 0; i < c.steps.length; i++, j++) {
        while (j < c.greedy_ids.length && c.greedy_ids[j] !== c.steps[i].id) j++;
        expect(j, `${file}: step ${i} (id ${c.steps[i].id}) is not among the greedy ids`).toBeLessThan(c.greedy_ids.length);
        const lp = logSoftmax(got[P - 1 + j]);
        for (const [id, want] of c.steps[i].top) worst = Math.max(worst, Math.abs(lp[id] - want));
        // Greedy tokens up to the first near-tie: a top-1 / top-2 margin below twice the largest log-prob difference
        // seen on such files can flip legitimately (each of the two log-probs may move by that much). After it the
        // choice is llama.cpp's, and later steps condition on its tokens, so log-probs are still compared.
        if (c.logprob_margins[i] < 2 * tol.measured) tied = true;
        if (!tied) expect(argmax(lp), `${file} greedy step ${i}`).toBe(c.steps[i].id);
      }
    }
    console.log(`${file}: max |log-prob - llama.cpp| ${worst.toExponential(2)}`);
    expect(worst, `${file}: max |log-prob - llama.cpp| over the top 5 of every step`).toBeLessThan(tol.bound);
  });
});
