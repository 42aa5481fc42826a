// The single-path decode benchmark's counts and its timed run, shared by bench/decode.ts (Node) and the Chromium page
// (bench/browser_page/engine_benches.ts), so both time the same prompts the same way. No Node API.
import type { Engine } from '../../src/engine.js';
import { freshEngine, timedStep } from './engine.js';

/** llama.cpp, one CPU thread, stories260K, one sequence (shared/webgpu-on-cpu.md). */
export const LLAMA_CPP_STORIES_TOK_S = 2900;

export type DecodeModel = 'stories260K' | 'smollm2-135m-random';

export interface DecodeCase {
  prompt: number;
  /** Prompt of the untimed warm-up run (a prefill and one decode step: compiles the pipelines). */
  warmPrompt: number;
  prefillRepeats: number;
  decodeSteps: number;
  decodeRepeats: number;
}

/**
 * Token counts per model and adapter. SwiftShader runs SmolLM2's shape at seconds per token on this machine (about
 * 0.3-0.6 GFLOP/s), so it gets a 16-token prompt and 4 decode steps to keep the whole benchmark near 4 minutes.
 */
export function decodeCase(model: DecodeModel, adapter: string, quick: boolean): DecodeCase {
  if (quick) return { prompt: 16, warmPrompt: 8, prefillRepeats: 1, decodeSteps: 3, decodeRepeats: 1 };
  if (model === 'stories260K')
    return adapter === 'swiftshader'
      ? { prompt: 256, warmPrompt: 256, prefillRepeats: 5, decodeSteps: 64, decodeRepeats: 2 }
      : { prompt: 256, warmPrompt: 256, prefillRepeats: 7, decodeSteps: 64, decodeRepeats: 3 };
  return adapter === 'swiftshader'
    ? { prompt: 16, warmPrompt: 5, prefillRepeats: 1, decodeSteps: 4, decodeRepeats: 1 }
    : { prompt: 128, warmPrompt: 128, prefillRepeats: 3, decodeSteps: 32, decodeRepeats: 2 };
}

/**
 * One prompt on an engine with an empty prefix cache: the prefill step's milliseconds, then `steps` greedy decode
 * steps of the same path (the prompt is not computed twice: SwiftShader takes seconds per SmolLM2-shaped token).
 */
export async function promptRun(base: Engine, prompt: number[], steps: number): Promise<{ prefill: number; decode: number[] }> {
  const e = freshEngine(base);
  e.createPath(prompt, { temperature: 0 });
  const prefill = await timedStep(e);
  const decode: number[] = [];
  for (let i = 0; i < steps; i++) decode.push(await timedStep(e));
  e.freeAll();
  return { prefill, decode };
}
