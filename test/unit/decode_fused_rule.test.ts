// Which adapters take the fused decode step (model/decode_fused_rule.ts): on where known to be CPU adapters, measured
// where the adapter names nothing of itself, off on GPUs that name themselves; the option's bad values are typed errors.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { checkDecodeFused, decodeFusedMode } from '../../src/model/decode_fused_rule.js';

describe('decodeFused rule', () => {
  const cpu = { isCpu: true, anonymous: false };
  const pageLlvmpipeByName = { isCpu: true, anonymous: true };
  const anonymous = { isCpu: false, anonymous: true };
  const gpu = { isCpu: false, anonymous: false };

  it('default: on for CPU adapters, measured for anonymous ones, off for GPUs', () => {
    expect(decodeFusedMode(true, cpu)).toEqual({ mode: 'on', why: null });
    expect(decodeFusedMode(true, pageLlvmpipeByName)).toEqual({ mode: 'on', why: null });
    expect(decodeFusedMode(true, anonymous)).toEqual({ mode: 'measure', why: null });
    expect(decodeFusedMode(true, gpu).mode).toBe('off');
    expect(decodeFusedMode(true, gpu).why).toMatch(/not a CPU adapter/);
  });

  it('explicit values override the adapter', () => {
    for (const a of [cpu, pageLlvmpipeByName, anonymous, gpu]) {
      expect(decodeFusedMode(false, a).mode).toBe('off');
      expect(decodeFusedMode('measure', a).mode).toBe('measure');
      expect(decodeFusedMode('any-adapter', a).mode).toBe('on');
    }
  });

  it('undefined is the default; anything else is an InvalidArgumentError naming the values', () => {
    expect(checkDecodeFused(undefined)).toBe(true);
    for (const v of [true, false, 'measure', 'any-adapter'] as const) expect(checkDecodeFused(v)).toBe(v);
    for (const v of [0, 1, 'off', null, 'auto']) {
      expect(() => checkDecodeFused(v)).toThrow(InvalidArgumentError);
      expect(() => checkDecodeFused(v)).toThrow(/'measure'/);
    }
  });
});
