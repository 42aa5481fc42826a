// Integer-dot A/B (issue 12): each matrix of the SmolLM2-135M shape that a llama-quantize Q4_K_M file stores in Q8_0
// or Q6_K (the tied LM head and embedding, Q6_K -> Q8_0 at 576 columns; attn_v, Q6_K -> Q8_0; ffn_down where
// use_more_bits, Q6_K at 1536 columns), at one row (decode), through the three bodies kernels/qmatmul.ts has for it:
// 8-bit x ('q8': quantize_x8 + qmatmul_q8.wgsl with idot_<type>.wgsl), f32 x through the type's dot step
// (qmatmul_decode.wgsl, 'f32') and f32 x through the register-blocked body ('f32-blocked', what the model ran for
// these types before their integer step, for batch invariance). Random weights (test/ref/quant_random.ts). Rounds
// alternate the bodies, so each ratio is taken under the same load; the 'q8' time includes its quantize dispatch.
// Reports ms per call (wall and this process's CPU time, medians) and each body's speed over 'f32-blocked' and 'f32';
// 'q8 reused' times the 8-bit matmul alone, on x an earlier part of the same matrix quantized (QMatmul xqReady).
// FORKLM_BENCH_ADAPTERS=llvmpipe (comma list) narrows the adapters; FORKLM_BENCH_QUICK=1 times briefly.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createStorage, createStorageFrom } from '../src/gpu/buffers.js';
import { createGpu } from '../src/gpu/device.js';
import { QMatmul } from '../src/kernels/qmatmul.js';
import { createQuantizedX } from '../src/kernels/quantize_x8.js';
import { destroyWeights, uploadWeights } from '../src/weights/gpu_tensor.js';
import type { StorageType } from '../src/weights/types.js';
import { randomWeights } from '../test/ref/quant_random.js';
import { mulberry32 } from '../test/ref/random.js';
import { benchAdapters, hostRecord, QUICK } from './bench_models.js';
import { median, round4, runBatch } from './common/timing.js';
import { startLoadMeter } from './harness.js';

const MATRICES: { label: string; type: StorageType; K: number; N: number; reps: number }[] = [
  { label: 'lm_head Q8_0', type: 'Q8_0', K: 576, N: 49152, reps: 1 },
  { label: 'attn_v Q8_0 (x30)', type: 'Q8_0', K: 576, N: 192, reps: 30 },
  { label: 'ffn_down Q6_K (x30)', type: 'Q6_K', K: 1536, N: 576, reps: 30 },
];
/** 'q8 reused': 8-bit x that an earlier part of the same matrix quantized (xqReady: no quantize dispatch), as attn_v
 * runs beside the Q5_0 q|k rows of the model's fused q|k|v. */
const BODIES = ['q8', 'f32', 'f32-blocked', 'q8 reused'] as const;

const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

export async function run(): Promise<object> {
  const stopMeter = await startLoadMeter();
  const adapters: Record<string, object> = {};
  for (const choice of benchAdapters() as AdapterChoice[]) {
    const gpu = await createGpu({ adapter: choice });
    const rounds = QUICK ? 2 : choice === 'swiftshader' ? 3 : 9;
    const rand = mulberry32(11);
    const out: Record<string, object> = {};
    for (const m of MATRICES) {
      console.error(`bench idot: ${choice} ${m.label}`);
      const bytes = randomWeights(m.type, m.N, m.K, rand);
      const w = uploadWeights(gpu, m.type, bytes, m.N, m.K, m.label);
      const x = createStorageFrom(gpu.device, new Float32Array(m.K).map(() => rand() - 0.5), `x (1, ${m.K}) f32`);
      const y = createStorage(gpu.device, m.N * 4, `y (1, ${m.N}) f32`);
      const mms = BODIES.map((b) => new QMatmul(gpu, { type: m.type, K: m.K, N: m.N, bias: false, variants: ['decode'], activations: b === 'q8 reused' ? 'q8' : b }));
      const xq = createQuantizedX(gpu, 1, m.K, 'xq');
      const bound = mms.map((mm, i) => mm.bind({ x, w, y, ...(BODIES[i] === 'q8 reused' ? { xq, xqReady: true } : {}) }));
      // x on 8 bits in xq once, for 'q8 reused' (x never changes).
      const fill = mms[0].bind({ x, w, y, xq });
      await runBatch(gpu, (p) => fill.encode(p, 1), 1);
      fill.destroy();
      const encode = bound.map((b) => (p: GPUComputePassEncoder) => { for (let i = 0; i < m.reps; i++) b.encode(p, 1); });
      for (const e of encode) await runBatch(gpu, e, 1);
      const wall: number[][] = BODIES.map(() => []);
      const cpu: number[][] = BODIES.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (const [i, e] of encode.entries()) {
          const c0 = cpuMs();
          wall[i].push(await runBatch(gpu, e, 1));
          cpu[i].push(cpuMs() - c0);
        }
      }
      const med = BODIES.map((_, i) => ({ wall: median(wall[i]), cpu: median(cpu[i]) }));
      const ratio = (a: number, b: number) => ({ wall: round4(med[b].wall / med[a].wall), cpu: round4(med[b].cpu / med[a].cpu) });
      out[m.label] = {
        type: m.type,
        shape: { K: m.K, N: m.N, callsPerStep: m.reps },
        msPerStep: Object.fromEntries(BODIES.map((b, i) => [b, { wall: round4(med[i].wall), cpu: round4(med[i].cpu), minWall: round4(Math.min(...wall[i])) }])),
        q8OverF32Blocked: ratio(0, 2),
        q8OverF32DotStep: ratio(0, 1),
        q8ReusedOverF32Blocked: ratio(3, 2),
        samples: rounds,
      };
      for (const b of bound) b.destroy();
      for (const mm of mms) mm.destroy();
      destroyWeights(w);
      xq.xq.destroy();
      xq.xs.destroy();
      x.destroy();
      y.destroy();
    }
    adapters[choice] = out;
    gpu.destroy();
  }
  return { host: hostRecord(), otherProcessesLoad: await stopMeter(), adapters };
}
