// What every kernel shares: its shader source (uniform struct prelude + shaders/<name>.wgsl), and a bound kernel
// that owns its uniform buffer and bind group, built once and reused every step.
//
// Binding convention in every shader: @group(0) @binding(0) is `params: Params` (the kernel's uniform struct),
// bindings 1..n are the storage buffers in the order the kernel file documents.
import type { Gpu } from '../gpu/device.js';
import { createUniform } from '../gpu/buffers.js';
import type { KernelKey } from '../gpu/pipelines.js';
import type { UniformLayout } from '../gpu/uniform.js';
import { WGSL } from './wgsl.gen.js';
import { InvalidArgumentError } from '../errors.js';

/** The WGSL of shaders/<file>.wgsl with the uniform struct (named `Params`) prepended. */
export function shaderSource(file: string, layout: UniformLayout<string>): string {
  const body = WGSL[file];
  if (body === undefined) throw new Error(`shaders/${file}.wgsl is missing (run scripts/gen-shaders.mjs)`);
  return `${layout.wgsl}\n${body}`;
}

export function pipelineFor(gpu: Gpu, key: KernelKey, file: string, layout: UniformLayout<string>): GPUComputePipeline {
  return gpu.pipelines.get(key, () => shaderSource(file, layout));
}

/** A pipeline with its buffers bound. Encode it at most once per submit: its uniform is written at encode time. */
export class BoundKernel<F extends string> {
  private readonly uniform: GPUBuffer;
  private readonly bindGroup: GPUBindGroup;
  private readonly packed: ArrayBuffer;
  /** The values last written to the uniform (empty at first, so the first encode writes). */
  private readonly lastValues: number[] = [];

  constructor(
    private readonly gpu: Gpu,
    private readonly pipeline: GPUComputePipeline,
    private readonly layout: UniformLayout<F>,
    /** Binding i + 1 each; null leaves that binding number out (a shader section this pipeline does not have). */
    buffers: readonly (GPUBuffer | GPUBufferBinding | null)[],
    label: string,
  ) {
    this.uniform = createUniform(gpu.device, layout.byteSize, `${label}:params`);
    this.packed = new ArrayBuffer(layout.byteSize);
    this.bindGroup = gpu.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.uniform } },
        ...buffers.flatMap((b, i) => (b === null ? [] : [{ binding: i + 1, resource: 'buffer' in b ? b : { buffer: b } }])),
      ],
    });
  }

  /** Writes the uniform (only when a value changed) and dispatches. */
  encode(pass: GPUComputePassEncoder, params: Record<F, number>, groups: readonly [number, number?, number?]): void {
    // Compared field by field, not through a key string: this runs for every dispatch of every step.
    const fields = this.layout.fields;
    let changed = false;
    for (let i = 0; i < fields.length; i++) {
      const v = params[fields[i][0]];
      if (this.lastValues[i] !== v) {
        this.lastValues[i] = v;
        changed = true;
      }
    }
    if (changed) {
      this.layout.packInto(this.packed, params);
      this.gpu.device.queue.writeBuffer(this.uniform, 0, this.packed);
    }
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }

  destroy(): void {
    this.uniform.destroy();
  }
}

/** Workgroups needed to cover `n` items with `perGroup` items each. */
export function groupsFor(n: number, perGroup: number): number {
  return Math.ceil(n / perGroup);
}

/**
 * Splits a 1-D dispatch of `groups` workgroups into (x, y) so that x stays within maxComputeWorkgroupsPerDimension;
 * the shader recovers the flat index as `gid.x + gid.y * num_workgroups.x * WG` style math.
 */
export function grid2d(gpu: Gpu, groups: number): [number, number] {
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Runs `record` in one compute pass and submits it (tests and one-off work; the model batches a whole step). */
export function submitPass(gpu: Gpu, record: (pass: GPUComputePassEncoder) => void): void {
  gpu.checkLost();
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  record(pass);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

/**
 * Throws unless `floats` is a count (an integer >= 0) and `buffer` holds at least that many 4-byte values; `what`
 * names the binding in the message. Shared by the kernels.a candidate for kernel.ts).
 */
export function checkFloats(op: string, what: string, buffer: GPUBuffer, floats: number): void {
  if (!Number.isInteger(floats) || floats < 0) {
    throw new InvalidArgumentError(`${op}: ${what} needs ${floats} values; row and element counts must be integers >= 0`);
  }
  if (buffer.size < floats * 4) {
    throw new InvalidArgumentError(
      `${op}: ${what} (${buffer.label || 'unlabelled'}) holds ${buffer.size} bytes, needs ${floats * 4} (${floats} values); ` +
        'allocate it for the largest row count the model encodes',
    );
  }
}
