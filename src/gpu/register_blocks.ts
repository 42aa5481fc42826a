// How the CPU adapters' register-blocked kernels hold their per-thread blocks, chosen once per device. Kept free of
// any WebGPU import so the CLI and tests can parse the option before touching the GPU.
import { InvalidArgumentError } from '../errors.js';

/**
 * - `loops`: blocks in function-scope arrays indexed by loop counters (shaders/matmul_prefill.wgsl). The compiler
 *   unrolls the loops and keeps the arrays in registers; the WGSL stays short and compiles fast everywhere.
 * - `unrolled`: the same kernel written out with named variables (shaders/matmul_prefill_unrolled.wgsl), for a
 *   compiler that cannot unroll the loop version: Chromium's GL route, where ANGLE clamps every dynamic array index
 *   in the GLSL it hands to the driver, after which Mesa's llvmpipe keeps the arrays in memory (8x slower at M = 8,
 *   bench/RESULTS.md "Why the same step is slower in Chromium"). Same operations in the same order: same bits.
 * - `auto`: `unrolled` in a browser on a CPU adapter without `core-features-and-limits` (a compatibility-mode
 *   adapter: Chromium's OpenGL ES backend, which always runs through ANGLE), `loops` everywhere else: in Node on
 *   llvmpipe both forms run alike (Dawn hands Mesa its GLSL directly), SwiftShader compiles the written-out form about
 *   10x slower (seconds per pipeline) and runs it slower, and GPUs take the tiled kernels instead.
 */
export type RegisterBlocks = 'loops' | 'unrolled';
export type RegisterBlocksChoice = 'auto' | RegisterBlocks;
export const REGISTER_BLOCKS_CHOICES: readonly RegisterBlocksChoice[] = ['auto', 'loops', 'unrolled'];

export function checkRegisterBlocks(value: unknown, source = 'registerBlocks'): RegisterBlocksChoice {
  if (value === undefined) return 'auto';
  if ((REGISTER_BLOCKS_CHOICES as readonly unknown[]).includes(value)) return value as RegisterBlocksChoice;
  throw new InvalidArgumentError(`${source}=${String(value)} is not a register-block form; use one of ${REGISTER_BLOCKS_CHOICES.join(', ')}.`);
}

/** What the adapter tells about itself that the `auto` choice reads. */
export interface RegisterBlocksAdapter {
  /** Running in a browser (navigator.gpu), not Node's Dawn. */
  browser: boolean;
  /** A software adapter: the register-blocked kernels run at all (GPUs take the tiled ones). */
  isCpu: boolean;
  /** The adapter offers `core-features-and-limits`, i.e. it is not a compatibility-only (OpenGL ES) adapter. */
  core: boolean;
}

/** The form `choice` resolves to on an adapter (see RegisterBlocks). */
export function resolveRegisterBlocks(choice: RegisterBlocksChoice, a: RegisterBlocksAdapter): RegisterBlocks {
  if (choice !== 'auto') return choice;
  return a.browser && a.isCpu && !a.core ? 'unrolled' : 'loops';
}
