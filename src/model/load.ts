// loadModel: any supported model (Hugging Face folder with safetensors, a GGUF file, a llama2.c checkpoint; on disk,
// by URL, or as browser Files) -> its ModelSpec, the canonical ModelWeights (assemble.ts: name maps, fused tensors
// split, interleaved q/k rows permuted) and the tokenizer data that came with it.
import { ModelFormatError, ModelNotFoundError, UnsupportedModelError } from '../errors.js';
import { bytesEqual, decodeUtf8 } from '../io/bytes.js';
import { parseGguf } from '../io/gguf.js';
import type { MetadataValue } from '../io/gguf.js';
import { parseLlama2cCheckpoint } from '../io/llama2c.js';
import { parseLlama2cTokenizer } from '../tokenizer/llama2c.js';
import { parseSafetensors } from '../io/safetensors.js';
import type { SafetensorsFile } from '../io/safetensors.js';
import { directoryFiles, isUrl, memoryFiles, pathKind, readRequired, urlFiles } from '../io/source.js';
import type { ModelFileSet, ProgressCallback } from '../io/source.js';
import { assembleModel } from './assemble.js';
import type { TensorProvider } from './assemble.js';
import type { ModelConfig } from './config.js';
import { parseJsonObject, specFromLlama2c } from './config_parse.js';
import { specFromGguf } from './gguf_config.js';
import { specFromHf } from './hf_config.js';
import { legacyConfig, legacyWeights } from './legacy.js';
import type { ModelSpec, ModelWeights } from './spec.js';
import type { LlamaWeights } from './weights.js';
import type { ModelFormat } from './weight_maps.js';
import type { StoredMatrix } from '../weights/stored_matrix.js';
import type { StorageType } from '../weights/types.js';

export type { ModelFormat } from './weight_maps.js';

/** What came with the model to build a tokenizer from. */
export type TokenizerSource =
  | { kind: 'hf'; /** tokenizer.json text */ json: string; /** tokenizer_config.json, if present */ config: Record<string, unknown> | null }
  | { kind: 'gguf'; /** the whole GGUF metadata record (tokenizer.ggml.*, chat template) */ metadata: Readonly<Record<string, MetadataValue>> }
  | { kind: 'llama2c'; /** the tokenizer.bin bytes, checked against the checkpoint's vocabulary at load */ bytes: Uint8Array };

export interface LoadedModel {
  /** What the model is: the one description the forward reads. */
  spec: ModelSpec;
  /** The canonical weights (separate projections, rotate-half q/k rows; matrices as stored, vectors f32). */
  modelWeights: ModelWeights;
  format: ModelFormat;
  /** Storage types of the weights as the file holds them, most common first (e.g. "BF16", "F32 + F16"). */
  dtype: string;
  /** Where it was loaded from, for messages */
  label: string;
  tokenizer: TokenizerSource | null;
  /** Tensors in the file that no canonical weight uses (diagnostics; e.g. a redundant lm_head of a tied model) */
  unusedTensors: string[];
  /** Bytes of every tensor in the file(s) as stored (headers and padding excluded) */
  fileTensorBytes: number;
  /** The Llama-only GPU model's view of `spec`; reading it throws UnsupportedModelError for families it does not run. */
  readonly config: ModelConfig;
  /** The Llama-only GPU model's weights (same arrays); throws like `config`. */
  readonly weights: LlamaWeights;
}

type LoadedParts = Omit<LoadedModel, 'config' | 'weights' | 'spec' | 'dtype' | 'unusedTensors'> & { provider: TensorProvider; used: Set<string> };

/** Elements of a shape (1 for a scalar). */
const elements = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A LoadedModel whose legacy views are computed on first read (a family the old GPU model cannot run still loads). */
function loaded(parts: LoadedParts): LoadedModel {
  const { provider, used, ...rest } = parts;
  const counts = new Map<string, number>();
  for (const n of used) counts.set(provider.dtype(n), (counts.get(provider.dtype(n)) ?? 0) + 1);
  const dtype = [...counts].sort((a, b) => b[1] - a[1]).map(([d]) => d).join(' + ');
  let legacy: LlamaWeights | null = null;
  return {
    ...rest,
    spec: rest.modelWeights.spec,
    dtype,
    unusedTensors: provider.names().filter((n) => !used.has(n)),
    get config() {
      return legacyConfig(rest.modelWeights.spec);
    },
    get weights() {
      return (legacy ??= legacyWeights(rest.modelWeights));
    },
  };
}

/** A path or URL (file or folder), a browser File/Blob, or a set of named files with an optional entry file. */
export type ModelInput = string | Blob | ModelFileSet | { files: ModelFileSet; entry?: string };

export interface LoadOptions {
  onProgress?: ProgressCallback;
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** A 2-D tensor's stored bytes (a view of the file) as a StoredMatrix; the Reader has checked its shape. */
function storedMatrix(t: { type: StorageType; shape: number[]; bytes: Uint8Array }): StoredMatrix {
  const cols = t.shape[t.shape.length - 1] ?? 1;
  return { type: t.type, rows: t.shape.length > 1 ? t.shape[0] : 1, cols, bytes: () => t.bytes };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function safetensorsProvider(label: string, shards: SafetensorsFile[]): TensorProvider {
  const where = new Map<string, SafetensorsFile>();
  for (const s of shards) {
    for (const name of s.tensors.keys()) {
      if (where.has(name)) throw new ModelFormatError(`${label}: tensor "${name}" is in both ${where.get(name)!.label} and ${s.label}.`);
      where.set(name, s);
    }
  }
  return {
    label,
    names: () => [...where.keys()],
    shape: (name) => where.get(name)?.tensors.get(name)?.shape ?? null,
    read: (name) => where.get(name)!.readF32(name),
    stored: (name) => storedMatrix(where.get(name)!.stored(name)),
    dtype: (name) => where.get(name)?.tensors.get(name)?.dtype ?? 'F32',
  };
}

async function optionalJson(files: ModelFileSet, name: string, opts: LoadOptions): Promise<Record<string, unknown> | null> {
  const b = await files.tryRead(name, opts.onProgress);
  return b ? parseJsonObject(decodeUtf8(b, name), `${files.label}: ${name}`) : null;
}

async function loadHf(files: ModelFileSet, entry: string | undefined, opts: LoadOptions): Promise<LoadedModel> {
  const label = files.label;
  const config = await optionalJson(files, 'config.json', opts);
  if (!config) throw new ModelNotFoundError(`${label}: config.json is missing; a Hugging Face model folder needs it next to the safetensors.`);
  const generationConfig = await optionalJson(files, 'generation_config.json', opts);
  const tokenizerConfig = await optionalJson(files, 'tokenizer_config.json', opts);
  const tokenizerBytes = await files.tryRead('tokenizer.json', opts.onProgress);
  const tokenizerText = tokenizerBytes ? decodeUtf8(tokenizerBytes, `${label}: tokenizer.json`) : null;
  const tokenizerJson = tokenizerText !== null ? parseJsonObject(tokenizerText, `${label}: tokenizer.json`) : null;
  const spec = specFromHf({ config, generationConfig, tokenizerConfig, tokenizerJson }, `${label}: config.json`);

  let shardNames: string[];
  if (entry?.endsWith('.safetensors')) {
    shardNames = [entry];
  } else {
    const single = await files.tryRead('model.safetensors', opts.onProgress);
    if (single) {
      const shard = parseSafetensors(single, `${label}: model.safetensors`);
      return finishHf(spec, label, [shard], tokenizerText, tokenizerConfig);
    }
    const index = await optionalJson(files, 'model.safetensors.index.json', opts);
    if (!index) {
      const listed = await files.list();
      if (listed?.some((n) => n.endsWith('.bin') || n.endsWith('.pt'))) {
        throw new UnsupportedModelError(`${label}: only PyTorch pickle weights found; forklm reads safetensors. Convert with transformers' save_pretrained(safe_serialization=True).`);
      }
      throw new ModelNotFoundError(`${label}: neither model.safetensors nor model.safetensors.index.json is there.`);
    }
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map) || !Object.values(map).every((v) => typeof v === 'string' && !v.includes('/') && !v.includes('\\'))) {
      throw new ModelFormatError(`${label}: model.safetensors.index.json has no valid weight_map (tensor name -> shard file name).`);
    }
    shardNames = [...new Set(Object.values(map as Record<string, string>))].sort();
  }
  const shards: SafetensorsFile[] = [];
  for (const name of shardNames) shards.push(parseSafetensors(await readRequired(files, name, opts.onProgress), `${label}: ${name}`));
  return finishHf(spec, label, shards, tokenizerText, tokenizerConfig);
}

function finishHf(spec: ModelSpec, label: string, shards: SafetensorsFile[], tokenizerText: string | null, tokenizerConfig: Record<string, unknown> | null): LoadedModel {
  const provider = safetensorsProvider(label, shards);
  const { weights, used } = assembleModel(spec, 'hf', provider);
  const tokenizer: TokenizerSource | null = tokenizerText !== null ? { kind: 'hf', json: tokenizerText, config: tokenizerConfig } : null;
  const fileTensorBytes = shards.reduce((n, s) => n + [...s.tensors.values()].reduce((k, t) => k + t.end - t.begin, 0), 0);
  return loaded({ modelWeights: weights, format: 'hf', label, tokenizer, provider, used, fileTensorBytes });
}

export async function loadGgufBytes(bytes: Uint8Array, label: string): Promise<LoadedModel> {
  const file = await parseGguf(bytes, label);
  const out = file.tensors.get('output.weight');
  const emb = file.tensors.get('token_embd.weight');
  // Converters write output.weight even for tied models (llama.cpp's llama2.c and GPT-2 converters do); an exact copy
  // of the embedding is the same weight, so keep one array and call the model tied.
  const comparable = !!out && !!emb && out.byteLength !== null && emb.byteLength !== null && out.ggmlType === emb.ggmlType && sameShape(out.shape, emb.shape);
  const tied = !out || (comparable && bytesEqual(file.rawBytes('output.weight'), file.rawBytes('token_embd.weight')));
  const provider: TensorProvider = {
    label,
    names: () => [...file.tensors.keys()],
    shape: (name) => (tied && name === 'output.weight' ? null : (file.tensors.get(name)?.shape ?? null)),
    read: (name) => file.readF32(name),
    stored: (name) => storedMatrix(file.stored(name)),
    dtype: (name) => file.tensors.get(name)?.typeName ?? 'F32',
  };
  const spec = specFromGguf(file.metadata, provider, label);
  const { weights, used } = assembleModel(spec, 'gguf', provider);
  for (const n of ['output.weight', 'rope_freqs.weight', 'rope_factors_long.weight', 'rope_factors_short.weight']) if (file.tensors.has(n) && (n !== 'output.weight' || tied)) used.add(n);
  const tokenizer: TokenizerSource | null = Array.isArray(file.metadata['tokenizer.ggml.tokens']) ? { kind: 'gguf', metadata: file.metadata } : null;
  const fileTensorBytes = [...file.tensors.values()].reduce((n, t) => n + (t.byteLength ?? 0), 0);
  return loaded({ modelWeights: weights, format: 'gguf', label, tokenizer, provider, used, fileTensorBytes });
}

async function loadLlama2c(files: ModelFileSet, entry: string, bytes: Uint8Array, opts: LoadOptions): Promise<LoadedModel> {
  const label = `${files.label}${files.label.endsWith('/') ? '' : '/'}${entry}`;
  const ckpt = parseLlama2cCheckpoint(bytes, label);
  const spec = specFromLlama2c(ckpt.header, label);
  const provider: TensorProvider = {
    label,
    names: () => [],
    shape: (name) => ckpt.tensorShape(name),
    read: (name) => ckpt.readF32(name),
    dtype: () => 'F32',
  };
  const { weights, used } = assembleModel(spec, 'llama2c', provider);
  // run.c's tokenizer sits next to the checkpoint: tokenizer.bin, or tok<vocab>.bin as in karpathy/tinyllamas.
  let tokenizer: TokenizerSource | null = null;
  for (const name of [`tok${spec.vocabSize}.bin`, 'tokenizer.bin']) {
    const tb = await files.tryRead(name, opts.onProgress);
    if (tb) {
      parseLlama2cTokenizer(tb, spec.vocabSize, `${files.label}: ${name}`); // a malformed file fails here, at load
      tokenizer = { kind: 'llama2c', bytes: tb };
      break;
    }
  }
  const fileTensorBytes = [...used].reduce((n, name) => n + 4 * elements(ckpt.tensorShape(name) ?? []), 0);
  return loaded({ modelWeights: weights, format: 'llama2c', label, tokenizer, provider, used, fileTensorBytes });
}

function looksLikeSafetensors(b: Uint8Array): boolean {
  if (b.length < 9 || b[8] !== 0x7b) return false;
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true) <= BigInt(b.length - 8);
}

function isGguf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46;
}

const isTokenizerBin = (n: string) => n === 'tokenizer.bin' || /^tok\d+\.bin$/.test(n);

/** Where the files are and which one is the model, for each kind of input. */
async function locate(input: ModelInput, opts: LoadOptions): Promise<{ files: ModelFileSet; entry?: string }> {
  if (typeof input === 'string') {
    if (isUrl(input)) {
      const clean = input.split(/[?#]/)[0];
      const slash = clean.lastIndexOf('/');
      const base = clean.slice(slash + 1);
      const fetchOpts = { fetch: opts.fetch, signal: opts.signal };
      if (/\.(gguf|bin|safetensors)$/i.test(base)) return { files: urlFiles(input.slice(0, slash + 1), fetchOpts), entry: base };
      return { files: urlFiles(input, fetchOpts) };
    }
    const kind = await pathKind(input);
    if (kind === 'dir') return { files: directoryFiles(input) };
    if (kind === 'file') {
      const cut = Math.max(input.lastIndexOf('/'), input.lastIndexOf('\\'));
      return { files: directoryFiles(cut >= 0 ? input.slice(0, cut) || '/' : '.'), entry: input.slice(cut + 1) };
    }
    throw new ModelNotFoundError(`${input}: no such file or folder. Pass a model folder, a .gguf or llama2.c .bin file, a URL, or a known model name to resolveModel.`);
  }
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    const name = (input as File).name || 'model';
    return { files: memoryFiles({ [name]: input }, name), entry: name };
  }
  if ('files' in input) return input;
  return { files: input as ModelFileSet };
}

/** Picks the model file of a listed folder when no entry was named. */
async function pickEntry(files: ModelFileSet): Promise<string | undefined> {
  const listed = await files.list();
  // config.json or safetensors mean a Hugging Face folder (loadHf names whatever is missing)
  if (listed === null || listed.includes('config.json') || listed.some((n) => n.endsWith('.safetensors'))) return undefined;
  const gguf = listed.filter((n) => n.endsWith('.gguf'));
  const bins = listed.filter((n) => n.endsWith('.bin') && !isTokenizerBin(n));
  if (gguf.length === 1 && bins.length === 0) return gguf[0];
  if (bins.length === 1 && gguf.length === 0) return bins[0];
  throw new ModelNotFoundError(
    `${files.label}: cannot tell which file is the model (files: ${listed.join(', ') || 'none'}). ` +
      `Pass the .gguf or .bin file itself, or a folder with config.json and model.safetensors.`,
  );
}

export async function loadModel(input: ModelInput, opts: LoadOptions = {}): Promise<LoadedModel> {
  const { files, entry: given } = await locate(input, opts);
  const entry = given ?? (await pickEntry(files));
  if (entry === undefined) return loadHf(files, undefined, opts);
  if (entry.endsWith('.safetensors') || entry.endsWith('.json')) return loadHf(files, entry.endsWith('.safetensors') ? entry : undefined, opts);
  const bytes = await readRequired(files, entry, opts.onProgress);
  const label = `${files.label}${files.label.endsWith('/') ? '' : '/'}${entry}`;
  if (isGguf(bytes)) return loadGgufBytes(bytes, label);
  if (looksLikeSafetensors(bytes)) return loadHf(files, entry, opts);
  if (entry.endsWith('.gguf')) return loadGgufBytes(bytes, label);
  return loadLlama2c(files, entry, bytes, opts);
}
