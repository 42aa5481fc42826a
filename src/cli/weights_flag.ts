// The --weights flag of the commands that load a model: how the GPU holds its weight matrices (model/gpu_weights.ts).
import { WEIGHTS_MODES } from '../weights/stored_matrix.js';

export const WEIGHTS_FLAG = {
  type: 'string',
  choices: WEIGHTS_MODES,
  default: 'as-stored',
  description: 'Weight matrices on the GPU: as-stored (the file\'s types: F16/BF16 and GGUF quantizations stay compact), f16 or f32 (more precise, 2x-8x the memory of a quantized file)',
} as const;

/** The same flag without a default, for `generate`, where --weights beside --server is refused (the server's weights run). */
export const WEIGHTS_FLAG_UNSET = {
  type: 'string',
  choices: WEIGHTS_MODES,
  description: WEIGHTS_FLAG.description + ' (default as-stored; not with --server)',
} as const;
