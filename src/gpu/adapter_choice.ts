// Which adapter forklm asks for. Kept free of any WebGPU import so the CLI can parse it before touching the GPU.
import { InvalidArgumentError } from '../errors.js';

/**
 * - `auto`: a hardware adapter if there is one, else llvmpipe (OpenGL ES, compatibility mode), else SwiftShader.
 * - `hardware`: only a non-fallback adapter.
 * - `llvmpipe`: Dawn's OpenGL ES backend in compatibility mode (on a machine without a GPU this is Mesa's llvmpipe).
 * - `swiftshader`: Dawn's Vulkan backend on Google's SwiftShader CPU driver.
 */
export type AdapterChoice = 'auto' | 'hardware' | 'llvmpipe' | 'swiftshader';
export const ADAPTER_CHOICES: readonly AdapterChoice[] = ['auto', 'hardware', 'llvmpipe', 'swiftshader'];

/** The concrete adapter kinds a device can end up on (never `auto`). */
export type AdapterKind = Exclude<AdapterChoice, 'auto'> | 'browser';

export function parseAdapterChoice(value: string | undefined, source = 'FORKLM_ADAPTER'): AdapterChoice {
  if (value === undefined || value === '') return 'auto';
  const v = value.trim().toLowerCase();
  if ((ADAPTER_CHOICES as readonly string[]).includes(v)) return v as AdapterChoice;
  throw new InvalidArgumentError(`${source}=${value} is not an adapter choice; use one of ${ADAPTER_CHOICES.join(', ')}.`);
}
