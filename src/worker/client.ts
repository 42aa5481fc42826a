// A Web Worker engine for pages: the model loads and runs in a worker, so the page's main thread never blocks on
// loading, kernel compilation or generation. The page holds a WorkerEngine with the in-page Engine's OpenAI-style
// surface (completions.create, chat.completions.create: same requests, same responses, streams as async iterables
// whose `controller` aborts them) and its branching streams (streamEab, streamPeaks). Errors thrown in the worker are
// rethrown here as the same typed errors (errors.ts); a call aborted through its signal, or a stream the page leaves
// (break, return(), controller.abort()), is aborted in the worker too, which frees its pages.
//
//   const engine = await createWorkerEngine('HuggingFaceTB/SmolLM2-135M-Instruct', { onProgress: console.log });
//   const stream = await engine.completions.create({ prompt: 'Once upon a time', n: 4, stream: true, seed: 1 });
//   for await (const chunk of stream) show(chunk.choices[0].index, chunk.choices[0].text);
import type { ChunkStream } from '../api/completions.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
  RequestOptions,
} from '../api/types.js';
import type { EngineInfo } from '../branch/engine_api.js';
import type { EabEvent, EabOptions, EabResult } from '../branch/eab.js';
import type { PeaksEvent, PeaksOptions, PeaksResult } from '../branch/peaks.js';
import type { ChatTemplateInfo } from '../api/host.js';
import { CancelledError, WorkerError } from '../errors.js';
import type { ModelSpec } from '../model/spec.js';
import { fromWire, type CallKind, type FromWorker, type LoadedInfo, type LoadProgress, type ToWorker, type WorkerLoadOptions, type WorkerModelInput, type WorkerStats } from './protocol.js';

export type { LoadProgress, WorkerLoadOptions, WorkerModelInput, WorkerStats } from './protocol.js';

export interface WorkerEngineOptions extends WorkerLoadOptions {
  /**
   * The worker to load the model in. Default: a new module worker running forklm's entry script (worker/entry.js; a
   * bundler that understands `new Worker(new URL(..., import.meta.url))`, such as Vite or webpack 5, bundles it).
   * Pass your own when the script lives elsewhere; it must call serveEngine(self).
   */
  worker?: Worker;
  /** Bytes of each file as it downloads (or is read from the cache), then the GPU phase. */
  onProgress?: (p: LoadProgress) => void;
  /** Aborts the load (the worker is terminated). */
  signal?: AbortSignal;
}

type Handler = (m: FromWorker) => void;

/** The page's end of the message channel: ids, handlers, and failure of every call when the worker dies. */
class Channel {
  private nextId = 1;
  private readonly handlers = new Map<number, Handler>();
  private dead: Error | null = null;
  /** The counters sent with the latest reply. */
  stats: WorkerStats = { steps: 0, rows: 0, pageCopies: 0, bytesCopied: 0, pagesPeak: 0, forks: 0, pagesInUse: 0 };

  constructor(readonly worker: Worker) {
    worker.addEventListener('message', (ev: MessageEvent) => {
      const m = ev.data as FromWorker;
      if ((m.type === 'item' || m.type === 'started' || m.type === 'done') && m.stats) this.stats = m.stats;
      this.handlers.get(m.id)?.(m);
    });
    worker.addEventListener('messageerror', () => {
      this.kill(new WorkerError("A message from the engine's worker could not be read (deserialization failed); the engine is stopped. Reload the page."));
    });
    worker.addEventListener('error', (ev: ErrorEvent) => {
      ev.preventDefault?.();
      this.kill(new WorkerError(`The engine's worker failed: ${ev.message || 'its script could not be loaded'}. Check the worker URL and the browser console.`));
    });
  }

  kill(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    for (const h of [...this.handlers.values()]) h({ type: 'error', id: -1, error: { name: error.name, code: 'WORKER', message: error.message } });
    this.handlers.clear();
  }

  send(make: (id: number) => ToWorker, handler: Handler): number {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    this.handlers.set(id, handler);
    this.worker.postMessage(make(id));
    return id;
  }

  drop(id: number): void {
    this.handlers.delete(id);
  }

  post(m: ToWorker): void {
    if (!this.dead) this.worker.postMessage(m);
  }
}

function rebuild(m: Extract<FromWorker, { type: 'error' }>): Error {
  return fromWire(m.error);
}

/** A plain call: resolves to the worker's 'done' value; the signal aborts it in the worker. */
function request<T>(ch: Channel, kind: CallKind, args: unknown[], signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) return Promise.reject(new CancelledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => ch.post({ type: 'abort', id });
    const id = ch.send(
      (id) => ({ type: 'call', id, kind, args }),
      (m) => {
        if (m.type !== 'done' && m.type !== 'error') return;
        ch.drop(id);
        signal?.removeEventListener('abort', onAbort);
        if (m.type === 'done') resolve(m.value as T);
        else reject(rebuild(m));
      },
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A stream from the worker: items in order, then the call's return value; abort() (or leaving) aborts it there. */
class RemoteStream<T, R> implements AsyncIterableIterator<T> {
  readonly controller = new AbortController();
  result: R | undefined;
  private readonly queue: T[] = [];
  private ended = false;
  private closed = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private id = 0;
  /** Resolves once the worker started the stream (or rejects with its error: a bad request fails create()). */
  readonly started: Promise<void>;

  constructor(ch: Channel, kind: CallKind, args: unknown[], outer?: AbortSignal) {
    let ok!: () => void;
    let fail!: (e: Error) => void;
    this.started = new Promise<void>((a, b) => ((ok = a), (fail = b)));
    this.started.catch(() => undefined);
    const notify = () => {
      this.wake?.();
      this.wake = null;
    };
    const onOuter = () => this.controller.abort(outer?.reason);
    outer?.addEventListener('abort', onOuter, { once: true });
    this.controller.signal.addEventListener('abort', () => {
      if (!this.ended) ch.post({ type: 'abort', id: this.id });
    });
    this.id = ch.send(
      (id) => ({ type: 'call', id, kind, args }),
      (m) => {
        if (m.type === 'started') ok();
        else if (m.type === 'item') this.queue.push(m.value as T);
        else if (m.type === 'done' || m.type === 'error') {
          this.ended = true;
          ch.drop(this.id);
          outer?.removeEventListener('abort', onOuter);
          if (m.type === 'done') {
            this.result = m.value as R;
            ok();
          } else {
            this.failure = rebuild(m);
            fail(this.failure);
          }
        }
        notify();
      },
    );
    if (outer?.aborted) this.controller.abort(outer.reason);
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.closed) return { value: undefined, done: true };
      if (this.queue.length > 0) return { value: this.queue.shift()!, done: false };
      if (this.failure) {
        const f = this.failure;
        this.failure = null;
        this.closed = true;
        throw f;
      }
      if (this.ended) return { value: undefined, done: true };
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.closed = true;
    this.queue.length = 0;
    if (!this.ended) this.controller.abort();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** A RemoteStream as an async generator whose return value is the call's result (streamEab, streamPeaks). */
async function* generatorOf<T, R>(ch: Channel, kind: CallKind, args: unknown[], signal?: AbortSignal): AsyncGenerator<T, R> {
  const s = new RemoteStream<T, R>(ch, kind, args, signal);
  try {
    await s.started;
    for (;;) {
      const r = await s.next();
      if (r.done) return s.result as R;
      yield r.value;
    }
  } finally {
    await s.return();
  }
}

/** The OpenAI-style create() of a worker engine: a whole response, or (stream: true) a ChunkStream. */
async function create(ch: Channel, kind: 'completions' | 'chat', body: { stream?: boolean | null }, options: RequestOptions = {}): Promise<unknown> {
  if (!body.stream) return request(ch, kind, [body], options.signal);
  const s = new RemoteStream<unknown, null>(ch, kind, [body], options.signal);
  await s.started;
  return s;
}

/** completions.create, as Completions.create (api/completions.ts) types it. */
export interface WorkerCompletions {
  create(body: CompletionRequest & { stream: true }, options?: RequestOptions): Promise<ChunkStream<CompletionChunk>>;
  create(body: CompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<Completion>;
  create(body: CompletionRequest, options?: RequestOptions): Promise<Completion | ChunkStream<CompletionChunk>>;
}

export interface WorkerChatCompletions {
  create(body: ChatCompletionRequest & { stream: true }, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
  create(body: ChatCompletionRequest & { stream?: false | null }, options?: RequestOptions): Promise<ChatCompletion>;
  create(body: ChatCompletionRequest, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
}

/** The page's handle on an engine in a Web Worker (createWorkerEngine). */
export class WorkerEngine {
  readonly completions: WorkerCompletions;
  readonly chat: { readonly completions: WorkerChatCompletions };
  /** What controllers read: vocabulary, context, EOS ids, branch and path limits, page size. */
  readonly info: EngineInfo;
  /** The model's spec (family, layers, dims, ...). */
  readonly config: ModelSpec;
  readonly modelName: string;
  /** The loaded files' label (file or folder name). */
  readonly label: string;
  /** The adapter the worker's engine runs on. */
  readonly gpuName: string;
  readonly hasTokenizer: boolean;
  readonly chatTemplate: ChatTemplateInfo;

  constructor(
    private readonly ch: Channel,
    loaded: LoadedInfo,
  ) {
    this.info = loaded.info;
    this.config = loaded.config;
    this.modelName = loaded.modelName;
    this.label = loaded.label;
    this.gpuName = loaded.gpuName;
    this.hasTokenizer = loaded.hasTokenizer;
    this.chatTemplate = loaded.chatTemplate;
    this.completions = { create: (body: CompletionRequest, options?: RequestOptions) => create(ch, 'completions', body, options) } as WorkerCompletions;
    this.chat = { completions: { create: (body: ChatCompletionRequest, options?: RequestOptions) => create(ch, 'chat', body, options) } as WorkerChatCompletions };
  }

  /** The worker running the engine. */
  get worker(): Worker {
    return this.ch.worker;
  }

  /** The engine's counters (steps, rows, page copies, pages peak, forks) and pages in use, as of the latest reply. */
  get stats(): WorkerStats {
    return this.ch.stats;
  }

  /** streamEab (branch/eab.ts) run in the worker: its events, then its result. `prompt`: token ids or text. */
  streamEab(prompt: readonly number[] | string, options: EabOptions = {}): AsyncGenerator<EabEvent, EabResult> {
    const { signal, ...params } = options;
    return generatorOf(this.ch, 'eab', [prompt, params], signal);
  }

  /** streamPeaks (branch/peaks.ts) run in the worker (without onStep/logits, which stay in the worker). */
  streamPeaks(prompt: readonly number[] | string, options: Omit<PeaksOptions, 'onStep' | 'logits'> = {}): AsyncGenerator<PeaksEvent, PeaksResult> {
    const { signal, ...params } = options;
    return generatorOf(this.ch, 'peaks', [prompt, params], signal);
  }

  /** The prompt's token ids (BOS as the tokenizer adds it). */
  encode(text: string): Promise<number[]> {
    return request(this.ch, 'encode', [text]);
  }

  /** The text of each token sequence. */
  decode(batch: readonly (readonly number[])[]): Promise<string[]> {
    return request(this.ch, 'decode', [batch]);
  }

  /** Frees the engine's GPU memory and ends the worker; later calls fail with a WorkerError. */
  async destroy(): Promise<void> {
    try {
      await new Promise<void>((resolve) => {
        try {
          this.ch.send((id) => ({ type: 'destroy', id }), (m) => (m.type === 'done' || m.type === 'error') && resolve());
        } catch {
          resolve();
        }
      });
    } finally {
      this.ch.kill(new WorkerError('The worker engine was destroyed.'));
      this.ch.worker.terminate();
    }
  }
}

/**
 * Loads `model` in a Web Worker and resolves to its engine. `model`: a URL (a model folder ending in '/', or a .gguf /
 * .safetensors / llama2.c .bin file), a hub id ('owner/name[@revision]', 'owner/name/file.gguf': io/hub.ts, cached in
 * the Cache API), a Blob, or picked Files. Errors: the loader's typed errors (ModelNotFoundError, ModelFormatError,
 * ChecksumError, NoAdapterError, ...), CancelledError when `signal` aborts, WorkerError when the worker cannot start.
 */
export async function createWorkerEngine(model: WorkerModelInput, options: WorkerEngineOptions = {}): Promise<WorkerEngine> {
  const { worker: given, onProgress, signal, ...load } = options;
  const worker = given ?? new Worker(new URL('./entry.js', import.meta.url), { type: 'module' });
  const ch = new Channel(worker);
  // A relative URL is relative to the page, not to the worker script.
  const input = typeof model === 'string' && /^\.{0,2}\//.test(model) && typeof location !== 'undefined' ? new URL(model, location.href).href : model;
  try {
    const loaded = await new Promise<LoadedInfo>((resolve, reject) => {
      const onAbort = () => reject(new CancelledError('The model load was cancelled; the worker was stopped.'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      ch.send(
        (id) => ({ type: 'load', id, model: input, options: load }),
        (m) => {
          if (m.type === 'progress') onProgress?.(m.progress);
          else if (m.type === 'loaded') resolve(m.loaded);
          else if (m.type === 'error') reject(rebuild(m));
        },
      );
    });
    return new WorkerEngine(ch, loaded);
  } catch (e) {
    ch.kill(e as Error);
    worker.terminate();
    throw e;
  }
}
