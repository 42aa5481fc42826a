// Compute pipelines are compiled once per (op, variant, override constants) and kept for the device's life:
// shader compilation costs 0.5-1 s on SwiftShader, so nothing in the per-token loop may compile.

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
  constructor(private readonly device: GPUDevice) {}

  /** The pipeline for `key`, compiling `code` (entry point `main`) with the key's override constants on first use. */
  get(key: KernelKey, code: () => string): GPUComputePipeline {
    const id = kernelKeyString(key);
    let p = this.pipelines.get(id);
    if (!p) {
      const module = this.device.createShaderModule({ code: code(), label: id });
      p = this.device.createComputePipeline({
        label: id,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: key.constants },
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
