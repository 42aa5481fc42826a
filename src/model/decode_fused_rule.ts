// Whether a model takes the fused decode step (kernels/decode_fused.ts) on an adapter: on where the adapter is known to
// be a CPU one, off where it is known to be a GPU, and measured at load where the adapter does not say which it is.
// Kept free of any WebGPU import so unit tests reach it without a device.
import { InvalidArgumentError } from '../errors.js';

/**
 * ModelOptions.decodeFused:
 * - `true` (default): on CPU adapters; measured at load on an adapter that names itself not at all (see `anonymous`);
 *   off on every other adapter.
 * - `false`: never (the layered forward).
 * - `'measure'`: on every adapter where the model fits, a few fused and layered decode steps are timed at load
 *   (model/decode_fused_choice.ts; Engine.fromWeights runs it) and the faster is kept.
 * - `'any-adapter'`: on every adapter where the model fits, unmeasured (tests).
 */
export type DecodeFusedOption = boolean | 'measure' | 'any-adapter';

/** What the model does with the fused step on an adapter: build and use it, build and time it first, or not build it. */
export type DecodeFusedMode = 'on' | 'measure' | 'off';

/** What the rule reads from the device (Gpu). */
export interface DecodeFusedAdapter {
  /** A known software adapter (llvmpipe, SwiftShader, or a page's adapter asked for as llvmpipe). */
  isCpu: boolean;
  /**
   * The adapter names neither vendor, architecture nor description: Chromium hides them for its OpenGL ES adapter
   * (llvmpipe through ANGLE) unless started with --enable-webgpu-developer-features, while it names a GPU's vendor
   * and architecture. Such an adapter may be a CPU one or a GPU nobody knows.
   */
  anonymous: boolean;
}

export function checkDecodeFused(value: unknown): DecodeFusedOption {
  if (value === undefined) return true;
  if (value === true || value === false || value === 'measure' || value === 'any-adapter') return value;
  throw new InvalidArgumentError(`decodeFused must be true, false, 'measure' or 'any-adapter', got ${String(value)}.`);
}

/** The mode `option` resolves to on `adapter`, with the reason when it is off. */
export function decodeFusedMode(option: DecodeFusedOption, adapter: DecodeFusedAdapter): { mode: DecodeFusedMode; why: string | null } {
  if (option === false) return { mode: 'off', why: 'turned off (decodeFused: false)' };
  if (option === 'any-adapter') return { mode: 'on', why: null };
  if (option === 'measure') return { mode: 'measure', why: null };
  if (adapter.isCpu) return { mode: 'on', why: null };
  // One workgroup per row suits only CPU adapters: on a GPU that names itself the fused step would run slower.
  if (adapter.anonymous) return { mode: 'measure', why: null };
  return { mode: 'off', why: 'not a CPU adapter (one workgroup per row suits only those)' };
}
