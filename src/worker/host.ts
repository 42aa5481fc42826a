// The engine side of a Web Worker engine: loads a model in the worker and serves the page's calls (client.ts) over
// postMessage. Streams go out item by item as the engine produces them, each with the engine's counters; an 'abort'
// from the page aborts the call's signal, which frees its pages (the call then ends with a CancelledError, sent back
// as such). `serveEngine(self)` is all a worker script needs (entry.ts is that script).
import { streamEab, type EabOptions } from '../branch/eab.js';
import { streamPeaks, type PeaksOptions } from '../branch/peaks.js';
import type { Engine } from '../engine.js';
import { engineFromLoaded, readModel } from '../engine_load.js';
import { InvalidArgumentError } from '../errors.js';
import { memoryFiles } from '../io/source.js';
import type { ModelInput } from '../model/load.js';
import type { CallKind, FromWorker, LoadProgress, ToWorker, WorkerLoadOptions, WorkerModelInput, WorkerStats } from './protocol.js';
import { toWire } from './protocol.js';

/** What serveEngine needs of a worker's global scope (DedicatedWorkerGlobalScope has it; tests may pass a port). */
export interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent) => void): void;
}

function modelInput(model: WorkerModelInput): ModelInput {
  if (Array.isArray(model)) {
    if (model.length === 0) throw new InvalidArgumentError('No files given: pass a .gguf, a llama2.c .bin with its tok*.bin, or config.json + model.safetensors + tokenizer.json.');
    return memoryFiles(model, model.length === 1 ? model[0].name : `${model.length} files`);
  }
  return model;
}

function labelOf(model: WorkerModelInput): string {
  if (typeof model === 'string') return model;
  if (Array.isArray(model)) return model.length === 1 ? model[0].name : `${model.length} files`;
  return (model as File).name ?? 'model';
}

/** Serves one engine on `scope` until the page destroys it. */
export function serveEngine(scope: WorkerScope): void {
  let engine: Engine | null = null;
  const running = new Map<number, AbortController>();
  const post = (m: FromWorker) => scope.postMessage(m);
  const stats = (): WorkerStats => ({ ...engine!.stats, pagesInUse: engine!.pagesInUse });

  async function load(id: number, model: WorkerModelInput, options: WorkerLoadOptions): Promise<void> {
    if (engine) throw new InvalidArgumentError('This worker already holds an engine; create another worker engine for another model.');
    const progress = (p: LoadProgress) => post({ type: 'progress', id, progress: p });
    const loaded = await readModel(modelInput(model), {
      hub: options.hub,
      onProgress: (p) => progress({ phase: 'download', file: p.file, loaded: p.loaded, total: p.total }),
    });
    progress({ phase: 'gpu' });
    engine = await engineFromLoaded(loaded, options.modelName ?? labelOf(model), {
      ...options,
      onProgress: (p) => p.phase === 'upload' && progress({ phase: 'upload', file: p.file, loaded: p.loaded, total: p.total }),
    });
    post({
      type: 'loaded',
      id,
      loaded: {
        info: engine.info,
        config: engine.config,
        modelName: engine.modelName,
        label: loaded.label,
        gpuName: engine.gpu.name,
        hasTokenizer: engine.tokenizer !== null,
        chatTemplate: engine.chatTemplate,
      },
    });
  }

  function need(): Engine {
    if (!engine) throw new InvalidArgumentError('The worker engine is not loaded (or was destroyed).');
    return engine;
  }

  function promptIds(e: Engine, prompt: unknown): number[] {
    if (typeof prompt !== 'string') return prompt as number[];
    if (!e.tokenizer) throw new InvalidArgumentError('This model has no tokenizer: give the prompt as token ids.');
    return e.tokenizer.encode(prompt);
  }

  /** Starts a call: a stream (async iterator, return value = 'done' value) or a plain value. */
  async function start(kind: CallKind, args: unknown[], signal: AbortSignal): Promise<AsyncIterator<unknown, unknown> | { value: unknown }> {
    const e = need();
    switch (kind) {
      case 'completions':
      case 'chat': {
        const r = kind === 'chat' ? await e.chat.completions.create(args[0] as never, { signal }) : await e.completions.create(args[0] as never, { signal });
        return (args[0] as { stream?: boolean }).stream ? (r as unknown as AsyncIterator<unknown>) : { value: r };
      }
      case 'eab':
        return streamEab(e, promptIds(e, args[0]), { ...(args[1] as EabOptions), signal });
      case 'peaks':
        return streamPeaks(e, promptIds(e, args[0]), { ...(args[1] as PeaksOptions), signal });
      case 'encode':
        return { value: promptIds(e, String(args[0])) };
      case 'decode': {
        if (!e.tokenizer) throw new InvalidArgumentError('This model has no tokenizer to decode with.');
        const tok = e.tokenizer;
        return { value: (args[0] as number[][]).map((ids) => tok.decode(ids)) };
      }
    }
    throw new InvalidArgumentError(`Unknown worker call '${String(kind)}'.`);
  }

  async function call(id: number, kind: CallKind, args: unknown[]): Promise<void> {
    const controller = new AbortController();
    running.set(id, controller);
    try {
      const s = await start(kind, args, controller.signal);
      if ('value' in s && !('next' in s)) {
        post({ type: 'done', id, value: s.value, stats: stats() });
        return;
      }
      const it = s as AsyncIterator<unknown, unknown>;
      let finished = false;
      try {
        post({ type: 'started', id, stats: stats() });
        for (;;) {
          const r = await it.next();
          if (r.done) {
            finished = true;
            post({ type: 'done', id, value: r.value ?? null, stats: stats() });
            return;
          }
          post({ type: 'item', id, value: r.value, stats: stats() });
        }
      } finally {
        // A post that throws (a value that cannot be cloned) leaves the loop early: end the stream so its pages are freed.
        if (!finished) await Promise.resolve(it.return?.(undefined)).catch(() => undefined); // the first error is the one reported
      }
    } finally {
      running.delete(id);
    }
  }

  scope.addEventListener('message', (ev: MessageEvent) => {
    const m = ev.data as ToWorker;
    const fail = (error: unknown) => post({ type: 'error', id: m.id, error: toWire(error) });
    if (m.type === 'abort') running.get(m.id)?.abort();
    else if (m.type === 'load') load(m.id, m.model, m.options).catch(fail);
    else if (m.type === 'call') call(m.id, m.kind, m.args).catch(fail);
    else if (m.type === 'destroy') {
      for (const c of running.values()) c.abort();
      engine?.destroy();
      engine = null;
      post({ type: 'done', id: m.id, value: null, stats: null });
    }
  });
}
