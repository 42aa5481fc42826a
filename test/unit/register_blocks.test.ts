// The one place that picks the register-blocked kernels' form per adapter (src/gpu/register_blocks.ts).
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { checkRegisterBlocks, resolveRegisterBlocks } from '../../src/gpu/register_blocks.js';

describe('register blocks', () => {
  it('auto writes the blocks out only for a compatibility-only CPU adapter in a browser (Chromium GL route)', () => {
    const pick = (browser: boolean, isCpu: boolean, core: boolean) => resolveRegisterBlocks('auto', { browser, isCpu, core });
    expect(pick(true, true, false)).toBe('unrolled'); // Chromium, llvmpipe through ANGLE
    expect(pick(true, true, true)).toBe('loops'); // Chromium, SwiftShader (Vulkan)
    expect(pick(false, true, false)).toBe('loops'); // Node, llvmpipe: Dawn hands Mesa its GLSL without ANGLE
    expect(pick(false, true, true)).toBe('loops'); // Node, SwiftShader
    expect(pick(true, false, false)).toBe('loops'); // a GPU in compatibility mode takes the tiled kernels
  });

  it('an explicit choice wins on every adapter', () => {
    for (const browser of [false, true]) {
      for (const core of [false, true]) {
        expect(resolveRegisterBlocks('loops', { browser, isCpu: true, core })).toBe('loops');
        expect(resolveRegisterBlocks('unrolled', { browser, isCpu: true, core })).toBe('unrolled');
      }
    }
  });

  it('parses the option and refuses anything else with a typed error', () => {
    expect(checkRegisterBlocks(undefined)).toBe('auto');
    expect(checkRegisterBlocks('unrolled')).toBe('unrolled');
    expect(() => checkRegisterBlocks('unroll')).toThrow(InvalidArgumentError);
    expect(() => checkRegisterBlocks('unroll')).toThrow(/auto, loops, unrolled/);
  });
});
