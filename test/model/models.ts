// Where the test models live and how tests load them: ../shared/models beside the repo (FORKLM_MODELS overrides).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readModel, tokenizerFor } from '../../src/engine_load.js';
import type { LoadedModel } from '../../src/model/load.js';

import { sharedModelsDir } from '../ref/shared_models.js';

export { sharedModelsDir };

export const STORIES_FORMATS = {
  hf: () => join(sharedModelsDir(), 'stories260K/hf'),
  gguf: () => join(sharedModelsDir(), 'stories260K/gguf/stories260K.gguf'),
  llama2c: () => join(sharedModelsDir(), 'stories260K/llama2c/stories260K.bin'),
} as const;

const cache = new Map<string, Promise<LoadedModel>>();
export function loadStories(format: keyof typeof STORIES_FORMATS = 'hf'): Promise<LoadedModel> {
  let p = cache.get(format);
  if (!p) {
    p = readModel(STORIES_FORMATS[format]());
    cache.set(format, p);
  }
  return p;
}

export { tokenizerFor };

export function referenceGreedy(): { expected_text: string; steps: number; prompt_token_ids: number[] } {
  return JSON.parse(readFileSync(join(sharedModelsDir(), '../reference/stories260K-greedy.json'), 'utf8'));
}
