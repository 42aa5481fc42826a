// The messages between a page's WorkerEngine (client.ts) and the engine in its Web Worker (host.ts), and how errors
// cross postMessage: structured clone keeps an Error's message but not its class, so errors travel as plain records
// (code, message, the class's own fields) and are rebuilt as the same typed errors (errors.ts) on the page.
import type { EngineInfo } from '../branch/engine_api.js';
import type { EngineCounters, EngineOptions } from '../engine.js';
import {
  CancelledError,
  ChecksumError,
  ContextOverflowError,
  DeviceLostError,
  ForkLMError,
  InvalidArgumentError,
  LimitError,
  ModelFormatError,
  ModelNotFoundError,
  NoAdapterError,
  NoChatTemplateError,
  PagePoolExhaustedError,
  RemoteFeatureError,
  RemoteServerError,
  ShaderError,
  UnsupportedModelError,
  WorkerError,
} from '../errors.js';
import type { HubOptions, HubProgress } from '../io/hub.js';
import type { ChatTemplateInfo } from '../api/host.js';
import type { ModelSpec } from '../model/spec.js';

/** What a worker may load: a URL or hub id (strings), a Blob (one .gguf / .bin), or picked files (File[]). */
export type WorkerModelInput = string | Blob | File[];

/** The engine options that survive structured clone (no GPU object, no callbacks, no signal). */
export type WorkerLoadOptions = Omit<EngineOptions, 'gpu' | 'onUpload'> & {
  hub?: Omit<HubOptions, 'fetch' | 'signal' | 'onProgress'>;
  requireTokenizer?: boolean;
};

/** The engine's counters plus the pages in use now: sent with every reply, so the page reads them without a call. */
export interface WorkerStats extends EngineCounters {
  pagesInUse: number;
}

/** What the page learns once the model is loaded. */
export interface LoadedInfo {
  info: EngineInfo;
  config: ModelSpec;
  modelName: string;
  label: string;
  gpuName: string;
  hasTokenizer: boolean;
  chatTemplate: ChatTemplateInfo;
}

/** The calls a worker serves. Streaming ones reply 'started', then 'item's, then 'done' (with a return value). */
export type CallKind = 'completions' | 'chat' | 'eab' | 'peaks' | 'encode' | 'decode';

export type ToWorker =
  | { type: 'load'; id: number; model: WorkerModelInput; options: WorkerLoadOptions }
  | { type: 'call'; id: number; kind: CallKind; args: unknown[] }
  | { type: 'abort'; id: number }
  | { type: 'destroy'; id: number };

export type FromWorker =
  | { type: 'progress'; id: number; progress: LoadProgress }
  | { type: 'loaded'; id: number; loaded: LoadedInfo }
  | { type: 'started'; id: number; stats: WorkerStats }
  | { type: 'item'; id: number; value: unknown; stats: WorkerStats }
  | { type: 'done'; id: number; value: unknown; stats: WorkerStats | null }
  | { type: 'error'; id: number; error: WireError };

/** Load progress: bytes of a file (download or cache read), then the GPU phase begins, then bytes of weights uploaded. */
export type LoadProgress =
  | { phase: 'download'; file: string; loaded: number; total: number | null; hub?: HubProgress }
  | { phase: 'gpu' }
  | { phase: 'upload'; file: string; loaded: number; total: number | null };

/** An error as it crosses postMessage. */
export interface WireError {
  name: string;
  code: string | null;
  message: string;
  param?: string | null;
  requested?: number;
  free?: number;
  reason?: string;
  status?: number | null;
  feature?: string;
}

export function toWire(e: unknown): WireError {
  if (e instanceof ForkLMError) {
    const x = e as ForkLMError & Partial<Record<'param' | 'requested' | 'free' | 'reason' | 'status' | 'feature', unknown>>;
    const w: WireError = { name: e.name, code: e.code, message: e.message };
    for (const k of ['param', 'requested', 'free', 'reason', 'status', 'feature'] as const) if (x[k] !== undefined) (w as unknown as Record<string, unknown>)[k] = x[k];
    return w;
  }
  if (e instanceof Error) return { name: e.name, code: null, message: e.message };
  return { name: 'Error', code: null, message: String(e) };
}

type Plain = new (message: string) => ForkLMError;
const PLAIN: Record<string, Plain> = {
  NO_ADAPTER: NoAdapterError,
  MODEL_FORMAT: ModelFormatError,
  UNSUPPORTED_MODEL: UnsupportedModelError,
  CHECKSUM: ChecksumError,
  MODEL_NOT_FOUND: ModelNotFoundError,
  CONTEXT_OVERFLOW: ContextOverflowError,
  CANCELLED: CancelledError,
  LIMIT: LimitError,
  NO_CHAT_TEMPLATE: NoChatTemplateError,
  SHADER: ShaderError,
  WORKER: WorkerError,
};

/** The typed error a WireError stands for (its class from `code`), or a plain Error named as the original. */
export function fromWire(w: WireError): Error {
  switch (w.code) {
    case 'INVALID_ARGUMENT':
      return new InvalidArgumentError(w.message, w.param ? { param: w.param } : undefined);
    case 'PAGE_POOL_EXHAUSTED':
      return new PagePoolExhaustedError(w.requested ?? 0, w.free ?? 0);
    case 'DEVICE_LOST':
      return new DeviceLostError(w.reason ?? 'unknown', w.message);
    case 'REMOTE_SERVER':
      return new RemoteServerError((w.reason ?? 'protocol') as RemoteServerError['reason'], w.message, w.status != null ? { status: w.status } : {});
    case 'REMOTE_FEATURE':
      return new RemoteFeatureError(w.feature ?? 'unknown', w.message);
  }
  const Cls = w.code ? PLAIN[w.code] : undefined;
  if (Cls) return new Cls(w.message);
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}
