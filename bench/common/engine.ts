// Engine helpers the engine benchmarks share, Node and Chromium alike (no Node API): engines that start from an empty
// KV and prefix cache without re-uploading weights, a timed step, and batches of forks.
import { Engine } from '../../src/engine.js';

/**
 * An engine over the same GPU model with an empty KV cache and prefix cache: nothing computed before is reused, so a
 * prompt is really recomputed. The weights and KV buffers are shared: use one such engine at a time and never
 * destroy() it (that would destroy the shared model). `pipeline`: EngineOptions.pipeline.
 */
export function freshEngine(base: Engine, options: { pipeline?: boolean } = {}): Engine {
  return new Engine(base.gpu, base.model, base.tokenizer, options);
}

/** Milliseconds of one engine step (plan, upload, one submit, readback of the token stats). */
export async function timedStep(engine: Engine): Promise<number> {
  const t0 = performance.now();
  const r = await engine.step();
  if (!r) throw new Error('timedStep: no live path had anything to compute');
  return performance.now() - t0;
}

/**
 * Runs `f` with B forks of `root`, each fed its own next token (so the B paths sample independently), and frees them
 * afterwards: the rows, attention reads and sampling of B independent paths without computing B prompts.
 */
export async function withForks<T>(e: Engine, root: number, B: number, f: (kids: number[]) => Promise<T>): Promise<T> {
  const V = e.config.vocabSize;
  const kids: number[] = [];
  for (let b = 0; b < B; b++) kids.push(e.fork(root, { nextToken: 3 + ((b * 7919) % (V - 3)), sibling: b }));
  try {
    return await f(kids);
  } finally {
    for (const k of kids) e.free(k);
  }
}
