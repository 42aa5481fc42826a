// Where the page gets a model: stories260K served next to the page (vite.config.ts serves /models/<name>/ from the
// shared model folder), a Hugging Face repository, or files the user picked or dropped. Reading goes through
// loadModel with byte progress; the GPU upload and kernel compilation are a separate, reported phase.
import { Engine, type EngineOptions } from '../src/engine.js';
import { readModel, tokenizerFor } from '../src/engine_load.js';
import { memoryFiles } from '../src/io/source.js';
import type { ModelInput } from '../src/model/load.js';
import { InvalidArgumentError } from '../src/errors.js';

export type ModelChoice =
  | { kind: 'served'; name: string }
  | { kind: 'hf'; repo: string }
  | { kind: 'files'; files: File[] };

export type LoadPhase =
  | { phase: 'download'; file: string; loaded: number; total: number | null }
  | { phase: 'gpu' };

/**
 * The hub id ("owner/name@revision", io/hub.ts) of a Hugging Face repository, from "owner/name" or any huggingface.co
 * URL of it (…/tree/<rev>, …/resolve/<rev>/…, …/blob/<rev>/…). Loading by hub id goes through the page's persistent
 * cache (Cache API): a second load of the same model makes no request.
 */
export function hfHubId(input: string): string {
  const s = input.trim().replace(/^https?:\/\/(www\.)?huggingface\.co\//, '').replace(/\/+$/, '');
  const m = /^([\w.-]+)\/([\w.-]+)(?:\/(?:tree|resolve|blob)\/([\w.-]+))?(?:\/.*)?$/.exec(s);
  if (!m || m[1].startsWith('.') || m[2].startsWith('.'))
    throw new InvalidArgumentError(`"${input}" is not a Hugging Face repository: write owner/name or paste its huggingface.co URL.`);
  return `${m[1]}/${m[2]}@${m[3] ?? 'main'}`;
}

function describe(choice: ModelChoice): { input: ModelInput; label: string } {
  if (choice.kind === 'served') return { input: new URL(`models/${choice.name}/`, location.href).href, label: choice.name };
  if (choice.kind === 'hf') return { input: hfHubId(choice.repo), label: choice.repo.trim() };
  if (choice.files.length === 0) throw new InvalidArgumentError('No files chosen: pick or drop a .gguf, a llama2.c .bin, or config.json + model.safetensors + tokenizer.json.');
  const label = choice.files.length === 1 ? choice.files[0].name : `${choice.files.length} files`;
  return { input: memoryFiles(choice.files, label), label };
}

/** Reads the model, builds its tokenizer, uploads it to the GPU: an engine ready to generate. */
export async function openEngine(
  choice: ModelChoice,
  options: EngineOptions & { onPhase?: (p: LoadPhase) => void; signal?: AbortSignal },
): Promise<{ engine: Engine; label: string }> {
  const { onPhase, signal, ...engineOptions } = options;
  const { input, label } = describe(choice);
  const loaded = await readModel(input, {
    signal,
    onProgress: (p) => onPhase?.({ phase: 'download', file: p.file.slice(p.file.lastIndexOf('/') + 1), loaded: p.loaded, total: p.total }),
  });
  const tokenizer = tokenizerFor(loaded);
  if (!tokenizer) throw new InvalidArgumentError(`${loaded.label} came without a tokenizer; add tokenizer.json (or tok<vocab>.bin) to the files.`);
  onPhase?.({ phase: 'gpu' });
  const engine = await Engine.fromWeights(loaded.modelWeights, tokenizer, engineOptions);
  return { engine, label };
}
