// Sampling parameters as the user gives them, validated once at the edge so that the kernel never sees a value
// outside its domain (a negative or NaN temperature, topP outside (0, 1], a fractional seed).
import { InvalidArgumentError } from '../errors.js';

export interface SamplingParams {
  /** Divides the logits before sampling; 0 is greedy (the highest logits, no randomness). */
  temperature: number;
  /** Nucleus mass: sample only from the smallest set of most likely tokens whose probability reaches topP. 1: all. */
  topP: number;
  /** Seeds the request's random streams: each path's stream follows from the seed and its lineage (rng.ts). */
  seed: number;
}

export const DEFAULT_SAMPLING: Readonly<SamplingParams> = Object.freeze({ temperature: 1, topP: 1, seed: 0 });

/** Throws InvalidArgumentError naming the first bad field. */
export function validateSamplingParams(p: SamplingParams): void {
  const { temperature, topP, seed } = p;
  // The kernel reads the temperature as an f32: it must stay finite there too.
  if (typeof temperature !== 'number' || !Number.isFinite(Math.fround(temperature)) || temperature < 0) {
    throw new InvalidArgumentError(
      `temperature must be a finite number >= 0 (0 = greedy, 1 = the model's distribution), got ${temperature}`,
    );
  }
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
    throw new InvalidArgumentError(`topP must be in (0, 1] (1 = no nucleus cut, e.g. 0.9 to drop the unlikely tail), got ${topP}`);
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(`seed must be an integer with |seed| < 2^53, got ${seed}`);
  }
}

/** Fills defaults (temperature 1, topP 1, seed 0) and validates. Unknown keys are rejected: they are usually typos. */
export function samplingParams(partial: Partial<SamplingParams> = {}): SamplingParams {
  for (const key of Object.keys(partial)) {
    if (!(key in DEFAULT_SAMPLING)) {
      throw new InvalidArgumentError(`unknown sampling parameter '${key}'; expected temperature, topP or seed`);
    }
  }
  const p: SamplingParams = {
    temperature: partial.temperature ?? DEFAULT_SAMPLING.temperature,
    topP: partial.topP ?? DEFAULT_SAMPLING.topP,
    seed: partial.seed ?? DEFAULT_SAMPLING.seed,
  };
  validateSamplingParams(p);
  return p;
}
