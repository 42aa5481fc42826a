// The fused decode step in a page on Chromium's GL route (llvmpipe through ANGLE, started without developer features,
// as users' pages run): what the adapter tells the page, the rule that follows from it (model/decode_fused_rule.ts),
// and stories260K's tokens with the fused step, measured at load, and layered: all three the same, and llama2.c's
// published greedy text. ANGLE rewrites the GLSL Mesa compiles (index clamps), so bit identity with the layered
// kernels is checked here and not only in Node.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import { tokenizerFor } from '../../src/engine_load.js';
import { createGpu, type Gpu } from '../../src/gpu/device.js';
import { loadModel } from '../../src/model/load.js';
import { decodeFusedMode } from '../../src/model/decode_fused_rule.js';
import { decodeContinuation } from '../../src/tokenizer/stream_decoder.js';

declare const __FORKLM_SHARED_MODELS__: string;
const base = (rel: string) => new URL(`/@fs${__FORKLM_SHARED_MODELS__}/${rel}`, location.origin).href;

/** Greedy tokens of one path from BOS, and two sampled paths stepped together (fused steps of 1 and 2 rows). */
async function run(engine: Engine, greedySteps: number): Promise<{ greedy: number[]; sampled: number[][] }> {
  const collect = async (ids: number[], steps: number) => {
    const out = new Map<number, number[]>(ids.map((id) => [id, []]));
    for (let s = 0; s < steps; s++) {
      const r = await engine.step();
      if (!r) break;
      for (const x of r.results) out.get(x.pathId)?.push(x.token);
    }
    ids.forEach((id) => engine.free(id));
    return ids.map((id) => out.get(id)!);
  };
  const [greedy] = await collect([engine.createPath([1], { temperature: 0 })], greedySteps);
  const prompt = [1, 403, 407, 261, 378];
  const sampled = await collect([engine.createPath(prompt, { temperature: 1, topP: 1, seed: 11 }), engine.createPath(prompt.slice(0, 3), { temperature: 0.8, topP: 0.9, seed: 12 })], 40);
  return { greedy, sampled };
}

describe('fused decode on Chromium GL route', () => {
  let gpu: Gpu;
  const engines: Engine[] = [];
  afterAll(() => {
    engines.forEach((e) => e.destroy());
    gpu?.destroy();
  });

  it('the adapter is anonymous; asked for by name it is a CPU adapter and takes the fused step, otherwise it is measured', async () => {
    gpu = await createGpu({ adapter: 'llvmpipe' });
    // What makes the rule necessary: Chromium names nothing of this adapter to the page.
    expect(gpu.anonymous).toBe(true);
    expect(gpu.isCpu).toBe(true);
    expect(decodeFusedMode(true, gpu).mode).toBe('on');
    // Reached without naming it (a page asking for any adapter), the same adapter is timed at load, never assumed.
    expect(decodeFusedMode(true, { ...gpu, isCpu: false }).mode).toBe('measure');
    expect(decodeFusedMode(true, { isCpu: false, anonymous: false })).toEqual({ mode: 'off', why: 'not a CPU adapter (one workgroup per row suits only those)' });
  });

  it('stories260K: fused, measured and layered engines give the same tokens, and llama2.c greedy text', async () => {
    const ref = await (await fetch(base('../reference/stories260K-greedy.json'))).json();
    const loaded = await loadModel(base('stories260K/hf/'));
    const tok = tokenizerFor(loaded);
    const make = async (decodeFused: boolean | 'measure') => {
      const e = await Engine.fromWeights(loaded.weights, tok, { gpu, kvPages: 64, decodeFused });
      engines.push(e);
      return e;
    };
    const fused = await make(true);
    const layered = await make(false);
    const measured = await make('measure');
    expect(fused.model.decodeFusedRefusal).toBeNull();
    expect(fused.model.decodeFused).not.toBeNull();
    expect(layered.model.decodeFused).toBeNull();
    const m = measured.model.decodeFusedMeasured!;
    expect(m, 'measure ran at load').not.toBeNull();
    expect(m.fusedMs).toBeGreaterThan(0);
    expect(m.layeredMs).toBeGreaterThan(0);
    // The faster one is kept, and only it: the pending copy is gone either way.
    expect(m.kept).toBe(m.fusedMs < m.layeredMs);
    expect(measured.model.decodeFused !== null).toBe(m.kept);
    expect(measured.model.decodeFusedPending).toBeNull();
    console.log(`decode_fused measure on the GL route: fused ${m.fusedMs.toFixed(3)} ms, layered ${m.layeredMs.toFixed(3)} ms, kept ${m.kept}, ${m.totalMs.toFixed(0)} ms at load`);

    const a = await run(fused, ref.steps);
    const b = await run(layered, ref.steps);
    const c = await run(measured, ref.steps);
    expect(decodeContinuation(fused.tokenizer!, ref.prompt_token_ids, a.greedy)).toBe(ref.expected_text);
    // Same bits, so the same tokens, greedy and sampled (each path's stream depends only on its seed and lineage).
    expect(a).toEqual(b);
    expect(c).toEqual(b);
    expect(a.sampled.map((t) => t.length)).toEqual([40, 40]);
    for (const e of [fused, layered, measured]) expect(e.pagesInUse).toBe(0);
    // A clean machine compiles every pipeline through ANGLE and Mesa cold: 40 s and more at load 5 (bench/RESULTS.md).
  }, 420_000);
});
