// Compute pipelines are compiled once per (op, variant, override constants) and kept for the device's life:
// shader compilation costs 0.5-1 s on SwiftShader, so nothing in the per-token loop may compile.
import { ShaderError } from '../errors.js';

/** A typed key: the op, the shader variant and its override constants identify a pipeline uniquely. */
export interface KernelKey {
  op: string;
  variant: string;
  constants: Record<string, number>;
}

export function kernelKeyString(key: KernelKey): string {
  const c = Object.keys(key.constants)
    .sort()
    .map((k) => `${k}=${key.constants[k]}`)
    .join(',');
  return `${key.op}/${key.variant}/${c}`;
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Number of compilations so far; tests assert it stays flat across decode steps. */
  compiled = 0;
  /**
   * Shader or pipeline validation errors, reported asynchronously by the device (WebGPU only says a pipeline is
   * invalid when it is used, and then only to the console). checkFailed() turns them into a typed error.
   */
  readonly failures: string[] = [];
  constructor(private readonly device: GPUDevice) {}

  /** Throws a ShaderError naming every pipeline that failed to compile so far. */
  checkFailed(): void {
    if (this.failures.length > 0)
      throw new ShaderError(
        `${this.failures.length} GPU pipeline(s) failed to compile on this adapter: ${this.failures.join('; ')}. ` +
          'This is a forklm bug or an adapter limitation: report it with the output of `forklm doctor`.',
      );
  }

  /** The pipeline for `key`, compiling `code` (entry point `main`) with the key's override constants on first use. */
  get(key: KernelKey, code: () => string): GPUComputePipeline {
    const id = kernelKeyString(key);
    let p = this.pipelines.get(id);
    if (!p) {
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: code(), label: id });
      p = this.device.createComputePipeline({
        label: id,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: key.constants },
      });
      void this.device.popErrorScope().then((e) => {
        if (e) this.failures.push(`${id}: ${e.message}`);
      });
      this.pipelines.set(id, p);
      this.compiled++;
    }
    return p;
  }

  get size(): number {
    return this.pipelines.size;
  }
}
