// Every pipeline variant the elementwise and normalisation kernels can pick compiles on each adapter, without a
// validation or internal error (a shader that fails to compile only reports it asynchronously, through the scope).
import { describe, expect, it } from 'vitest';
import { Embedding } from '../../src/kernels/embedding.js';
import { Gelu } from '../../src/kernels/gelu.js';
import { LayerNorm } from '../../src/kernels/layernorm.js';
import { NORM_WORKGROUP_SIZES, RmsNorm } from '../../src/kernels/rmsnorm.js';
import { Rope } from '../../src/kernels/rope.js';
import { SwiGlu } from '../../src/kernels/swiglu.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

describe.each(testAdapterChoices())('elementwise kernel variants on %s', (choice) => {
  it('compile: 2 norms x every workgroup size, rope, swiglu, gelu, embedding', async () => {
    const gpu = await gpuFor(choice);
    const before = gpu.pipelines.size;
    gpu.device.pushErrorScope('validation');
    gpu.device.pushErrorScope('internal');
    for (const workgroupSize of NORM_WORKGROUP_SIZES) {
      new RmsNorm(gpu, { dim: 64, eps: 1e-5, workgroupSize });
      new LayerNorm(gpu, { dim: 64, eps: 1e-5, workgroupSize });
    }
    const rope = new Rope(gpu, { headDim: 64, nHeads: 2, rowStride: 192, theta: 1e4 });
    new SwiGlu(gpu, { hidden: 64 });
    new Gelu(gpu);
    new Embedding(gpu, { dim: 64 });
    const internal = await gpu.device.popErrorScope();
    const validation = await gpu.device.popErrorScope();
    expect(internal?.message ?? null).toBeNull();
    expect(validation?.message ?? null).toBeNull();
    expect(gpu.pipelines.size - before).toBe(2 * NORM_WORKGROUP_SIZES.length + 4);
    // Same options again: served from the cache, nothing compiles (the per-token loop relies on this).
    new RmsNorm(gpu, { dim: 32, eps: 1e-6, workgroupSize: NORM_WORKGROUP_SIZES[0] });
    new Rope(gpu, { headDim: 128, nHeads: 1, rowStride: 128, theta: 1e6 }).destroy();
    expect(gpu.pipelines.size - before).toBe(2 * NORM_WORKGROUP_SIZES.length + 4);
    rope.destroy();
  });
});
