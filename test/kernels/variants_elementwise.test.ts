// Every pipeline variant the elementwise and normalisation kernels can pick compiles on each adapter, without a
// validation or internal error (a shader that fails to compile only reports it asynchronously, through the scope).
import { describe, expect, it } from 'vitest';
import { Embedding } from '../../src/kernels/embedding.js';
import { LayerNorm } from '../../src/kernels/layernorm.js';
import { NORM_WORKGROUP_SIZES, RmsNorm } from '../../src/kernels/rmsnorm.js';
import { MlpAct, type Activation } from '../../src/kernels/mlp_act.js';
import { RopeKv, type QkNormKind } from '../../src/kernels/rope_kv.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

describe.each(testAdapterChoices())('elementwise kernel variants on %s', (choice) => {
  it('compile: 2 norms x every workgroup size, rope_kv x 3 q/k norms, mlp_act x 3 acts x gated, embedding', async () => {
    const gpu = await gpuFor(choice);
    const before = gpu.pipelines.size;
    gpu.device.pushErrorScope('validation');
    gpu.device.pushErrorScope('internal');
    for (const workgroupSize of NORM_WORKGROUP_SIZES) {
      new RmsNorm(gpu, { dim: 64, eps: 1e-5, workgroupSize });
      new LayerNorm(gpu, { dim: 64, eps: 1e-5, workgroupSize });
    }
    const qkNorms: QkNormKind[] = ['none', 'head', 'projection'];
    for (const qkNorm of qkNorms) new RopeKv(gpu, { nHeads: 2, kvHeads: 1, headDim: 64, pageSize: 16, qkvStride: 256, qkNorm });
    const acts: Activation[] = ['silu', 'gelu_tanh', 'gelu_erf'];
    for (const act of acts) for (const gated of [true, false]) new MlpAct(gpu, { hidden: 64, act, gated });
    new Embedding(gpu, { dim: 64 });
    const internal = await gpu.device.popErrorScope();
    const validation = await gpu.device.popErrorScope();
    expect(internal?.message ?? null).toBeNull();
    expect(validation?.message ?? null).toBeNull();
    const built = 2 * NORM_WORKGROUP_SIZES.length + 3 + 6 + 1;
    expect(gpu.pipelines.size - before).toBe(built);
    // Same options again: served from the cache, nothing compiles (the per-token loop relies on this).
    new RmsNorm(gpu, { dim: 32, eps: 1e-6, workgroupSize: NORM_WORKGROUP_SIZES[0] });
    new RopeKv(gpu, { nHeads: 4, kvHeads: 4, headDim: 32, pageSize: 8, qkvStride: 384, qkNorm: 'head' });
    new MlpAct(gpu, { hidden: 7, act: 'gelu_erf', gated: false });
    expect(gpu.pipelines.size - before).toBe(built);
  });
});
