// Where the page gets a model: stories260K served next to the page (vite.config.ts serves /models/<name>/ from the
// shared model folder), a Hugging Face repository by hub id, or files the user picked or dropped. The model is read,
// checked and run in a Web Worker (createWorkerEngine): the page only shows progress, byte by byte, then the GPU phase
// (upload and kernel compilation).
import { InvalidArgumentError } from '../src/errors.js';
import { createWorkerEngine, type LoadProgress, type WorkerEngine, type WorkerLoadOptions, type WorkerModelInput } from '../src/worker/client.js';

export type ModelChoice =
  | { kind: 'served'; name: string }
  | { kind: 'hf'; repo: string }
  | { kind: 'files'; files: File[] };

export type LoadPhase = LoadProgress;

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

function describe(choice: ModelChoice): { input: WorkerModelInput; label: string } {
  if (choice.kind === 'served') return { input: new URL(`models/${choice.name}/`, location.href).href, label: choice.name };
  if (choice.kind === 'hf') return { input: hfHubId(choice.repo), label: choice.repo.trim() };
  if (choice.files.length === 0) throw new InvalidArgumentError('No files chosen: pick or drop a .gguf, a llama2.c .bin, or config.json + model.safetensors + tokenizer.json.');
  const label = choice.files.length === 1 ? choice.files[0].name : `${choice.files.length} files`;
  return { input: choice.files, label };
}

/** Loads the model in a worker: an engine ready to generate, off the page's main thread. */
export async function openEngine(
  choice: ModelChoice,
  options: WorkerLoadOptions & { onPhase?: (p: LoadPhase) => void; signal?: AbortSignal },
): Promise<{ engine: WorkerEngine; label: string }> {
  const { onPhase, signal, ...engineOptions } = options;
  const { input, label } = describe(choice);
  const engine = await createWorkerEngine(input, {
    ...engineOptions,
    modelName: label,
    signal,
    onProgress: (p) => onPhase?.(p.phase === 'download' ? { ...p, file: p.file.slice(p.file.lastIndexOf('/') + 1) } : p),
  });
  if (!engine.hasTokenizer) {
    await engine.destroy();
    throw new InvalidArgumentError(`${engine.label} came without a tokenizer; add tokenizer.json (or tok<vocab>.bin) to the files.`);
  }
  return { engine, label };
}
