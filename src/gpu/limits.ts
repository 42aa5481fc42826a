// The limits forklm asks for: the adapter's best where a bigger number lets kernels do more (buffer sizes,
// workgroup sizes, bindings), never the spec defaults, which are too small on llvmpipe (128 invocations).
import { LimitError } from '../errors.js';

/** Limits that kernels rely on. A device below one of these cannot run forklm at all. */
export const MIN_LIMITS = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 64 * 1024 * 1024,
} as const;

/** Limits requested at the adapter's maximum. */
const REQUESTED_AT_MAX = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'maxUniformBufferBindingSize',
] as const;

export function requiredLimits(adapter: GPUAdapter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of REQUESTED_AT_MAX) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') out[name] = v;
  }
  for (const [name, min] of Object.entries(MIN_LIMITS)) {
    if ((out[name] ?? 0) < min) {
      throw new LimitError(
        `This WebGPU adapter offers ${name}=${out[name] ?? 'none'}, below the ${min} forklm needs. ` +
          `Try another adapter (FORKLM_ADAPTER=llvmpipe or swiftshader) or run \`forklm doctor\` to see what is available.`,
      );
    }
  }
  return out;
}
