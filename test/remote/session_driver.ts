// Drives one path of a BranchEngine session to the end, the way generate() does: the tests' plain baseline.
import type { BranchEngine, StepResult } from '../../src/branch/engine_api.js';

export interface Driven {
  tokens: number[];
  results: StepResult[];
}

/** `steps` steps of the session's paths; returns each path's results in order. A path that reached `limit` results
 * is finished. */
export async function drive(session: BranchEngine, steps: number, limit = Infinity): Promise<Map<number, StepResult[]>> {
  const out = new Map<number, StepResult[]>();
  for (let i = 0; i < steps; i++) {
    const r = await session.step();
    if (!r) break;
    for (const x of r.results) {
      const list = out.get(x.pathId) ?? [];
      list.push(x);
      out.set(x.pathId, list);
      if (list.length >= limit) session.finish(x.pathId);
    }
  }
  return out;
}

/** One path from `prompt`, `n` tokens at `temperature` (0: greedy). */
export async function single(session: BranchEngine, prompt: readonly number[], n: number, temperature = 0, seed = 0): Promise<Driven> {
  const id = session.createPath(prompt, { temperature, seed }, { reserve: n });
  try {
    const results = (await drive(session, n)).get(id) ?? [];
    return { tokens: results.map((r) => r.token), results };
  } finally {
    session.release(id);
  }
}
