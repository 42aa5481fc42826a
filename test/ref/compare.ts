// Tolerance checks that report the worst element, so a failing kernel test says where and by how much.
import { expect } from 'vitest';

export interface Tolerance {
  /** Allowed |a - e| / max(|e|, floor): relative error with an absolute floor for values near zero. */
  rel: number;
  /** The floor of the denominator above, in the units of the values. */
  floor: number;
}

export function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor: number): { err: number; at: number } {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let err = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor);
    if (!(e <= err)) {
      err = e;
      at = i;
    }
  }
  return { err, at };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  const { err, at } = maxRelError(actual, expected, tol.floor);
  expect(
    err,
    `${what}: worst relative error ${err.toExponential(2)} at [${at}] (got ${actual[at]}, want ${expected[at]})`,
  ).toBeLessThanOrEqual(tol.rel);
}
