// llama-server on stories260K's GGUF for the remote-engine tests (the launcher itself is scripts/llama_server.ts).
import { join } from 'node:path';
import { startLlamaServer as start, type LlamaServerOptions, type RunningServer } from '../../scripts/llama_server.js';
import { sharedModelsDir } from '../ref/shared_models.js';

export type { RunningServer };

export function storiesGguf(): string {
  return join(sharedModelsDir(), 'stories260K/gguf/stories260K.gguf');
}

/** llama-server on stories260K (8 slots of 512 tokens, one thread unless `options` say otherwise). */
export function startLlamaServer(options: Omit<LlamaServerOptions, 'model'> = {}): Promise<RunningServer> {
  return start({ model: storiesGguf(), ...options });
}
