// Loading an engine by model name, path, URL or browser files: resolve (Node), read and check the weights, build the
// tokenizer that came with them, upload to the GPU.
import { Engine, type EngineOptions } from './engine.js';
import { ForkLMError } from './errors.js';
import { isNode } from './gpu/adapters.js';
import { hubFiles, parseHubId, type HubOptions } from './io/hub.js';
import { pathKind } from './io/source.js';
import type { ProgressCallback } from './io/source.js';
import { loadModel, type LoadedModel, type ModelInput, type TokenizerSource } from './model/load.js';
import { resolveModel, type ResolveOptions } from './model/resolve.js';
import { loadTokenizer, type LoadedTokenizer } from './tokenizer/index.js';
import type { Tokenizer } from './tokenizer/types.js';
import { checkWeightsMode } from './weights/stored_matrix.js';

export interface LoadEngineOptions extends EngineOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Passed to model resolution by name (cache folder, local model folders, download). */
  resolve?: ResolveOptions;
  /**
   * false: a tokenizer forklm cannot build (e.g. a GGUF BPE vocabulary, for now) leaves engine.tokenizer null instead
   * of failing the load; prompts are then given as token ids. Default true.
   */
  requireTokenizer?: boolean;
  /** For hub ids ('owner/name', 'owner/name/file.gguf'): base URL, cache, progress (io/hub.ts). */
  hub?: HubOptions;
}

/** Upload progress as `onProgress` events with phase 'upload' (the tensor as `file`), unless onUpload is given. */
function uploadProgress(options: LoadEngineOptions): LoadEngineOptions['onUpload'] {
  const on = options.onProgress;
  return options.onUpload ?? (on ? (p) => on({ file: p.tensor, loaded: p.loaded, total: p.total, phase: 'upload' }) : undefined);
}

/** The tokenizer a model file set came with, with its chat template, or null when it has none. */
export function loadedTokenizerFor(loaded: LoadedModel): LoadedTokenizer | null {
  const src: TokenizerSource | null = loaded.tokenizer;
  if (!src) return null;
  const eosTokenIds = loaded.spec.eosTokenIds;
  if (src.kind === 'hf')
    return loadTokenizer({ tokenizerJson: JSON.parse(src.json), tokenizerConfig: src.config ?? undefined, eosTokenIds, name: loaded.label });
  if (src.kind === 'gguf') return loadTokenizer({ ggufMetadata: src.metadata, eosTokenIds, name: loaded.label });
  return loadTokenizer({ llama2cTokenizer: src.bytes, vocabSize: loaded.spec.vocabSize, name: loaded.label });
}

/** The tokenizer a model file set came with, or null when it has none. */
export function tokenizerFor(loaded: LoadedModel): Tokenizer | null {
  return loadedTokenizerFor(loaded)?.tokenizer ?? null;
}

/** Reads a model (by name in Node: the cache, local model folders, then its public URL) without touching the GPU. */
export async function readModel(model: ModelInput, options: Pick<LoadEngineOptions, 'onProgress' | 'signal' | 'resolve' | 'hub'> = {}): Promise<LoadedModel> {
  let input = model;
  // A hub id ('owner/name', 'owner/name/file.gguf'), unless a local path of that name exists.
  const hub = typeof model === 'string' ? parseHubId(model) : null;
  if (hub && !(isNode && (await pathKind(model as string)) !== null)) {
    const files = hubFiles(hub, { signal: options.signal, ...options.hub });
    return loadModel(hub.file ? { files, entry: hub.file } : { files }, { onProgress: options.onProgress, signal: options.signal });
  }
  if (typeof model === 'string' && isNode) {
    input = (await resolveModel(model, { ...options.resolve, onProgress: options.onProgress, signal: options.signal })).path;
  }
  return loadModel(input, { onProgress: options.onProgress, signal: options.signal });
}

/** An engine over `model`, ready to create paths and serve completions. */
export async function loadEngine(model: ModelInput, options: LoadEngineOptions = {}): Promise<Engine> {
  checkWeightsMode(options.weights); // before the file is read
  const loaded = await readModel(model, options);
  return engineFromLoaded(loaded, typeof model === 'string' ? model : loaded.label, options);
}

/** The second half of loadEngine: the tokenizer and chat template of a read model, then the GPU upload. */
export async function engineFromLoaded(loaded: LoadedModel, modelName: string, options: LoadEngineOptions = {}): Promise<Engine> {
  checkWeightsMode(options.weights);
  let tok: LoadedTokenizer | null = null;
  try {
    tok = loadedTokenizerFor(loaded);
  } catch (e) {
    if (options.requireTokenizer !== false || !(e instanceof ForkLMError)) throw e;
  }
  const given = options.chatTemplate;
  return Engine.fromWeights(loaded.modelWeights, tok?.tokenizer ?? null, {
    modelName,
    ...options,
    onUpload: uploadProgress(options),
    // A template given in the options replaces the model's; BOS/EOS text still comes from the model where not given.
    chatTemplate: {
      template: given?.template ?? tok?.chatTemplate ?? null,
      bosToken: given?.bosToken ?? tok?.bosToken ?? null,
      eosToken: given?.eosToken ?? tok?.eosToken ?? null,
    },
  });
}
