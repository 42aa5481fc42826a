// Every failure a user can cause or meet has its own class, so callers can `instanceof` it, and a message that says
// what to do next. Messages name the offending value; they never leak a stack of internal names only.

export class ForkLMError extends Error {
  /** Stable machine-readable code, e.g. for the demo page or a JSON CLI error. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** No WebGPU adapter could be obtained. */
export class NoAdapterError extends ForkLMError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_ADAPTER', message, options);
  }
}

/** The GPU device was lost (driver reset, out of memory, tab backgrounded, destroy()). */
export class DeviceLostError extends ForkLMError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('DEVICE_LOST', message);
    this.reason = reason;
  }
}

/** A caller passed a parameter outside its domain (negative temperature, unknown mode, ...). */
export class InvalidArgumentError extends ForkLMError {
  /** The request field at fault, when known (OpenAI-style errors report it as `param`). */
  readonly param: string | null;
  constructor(message: string, options?: { param?: string }) {
    super('INVALID_ARGUMENT', message);
    this.param = options?.param ?? null;
  }
}

/** A model file (safetensors, GGUF, llama2.c, tokenizer) is malformed, truncated or inconsistent. */
export class ModelFormatError extends ForkLMError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_FORMAT', message, options);
  }
}

/** The model is well-formed but uses something forklm does not run (architecture, dtype, activation). */
export class UnsupportedModelError extends ForkLMError {
  constructor(message: string) {
    super('UNSUPPORTED_MODEL', message);
  }
}

/** A downloaded or cached file does not have the sha256 its manifest promises. */
export class ChecksumError extends ForkLMError {
  constructor(message: string) {
    super('CHECKSUM', message);
  }
}

/** A model could not be found by name, path or URL. */
export class ModelNotFoundError extends ForkLMError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_NOT_FOUND', message, options);
  }
}

/** A prompt (plus the tokens to generate) does not fit in the model's context window. */
export class ContextOverflowError extends ForkLMError {
  constructor(message: string) {
    super('CONTEXT_OVERFLOW', message);
  }
}

/** The KV page pool has no free page for an allocation. The pool state is unchanged when this is thrown. */
export class PagePoolExhaustedError extends ForkLMError {
  readonly requested: number;
  readonly free: number;
  constructor(requested: number, free: number) {
    super(
      'PAGE_POOL_EXHAUSTED',
      `KV page pool exhausted: needed ${requested} page(s), ${free} free. ` +
        `Prune or finish paths, lower max_paths / max_new_tokens, or create the engine with more pages (kvPages).`,
    );
    this.requested = requested;
    this.free = free;
  }
}

/** The request was cancelled through its AbortSignal. Every page it held has been freed. */
export class CancelledError extends ForkLMError {
  constructor(message = 'The request was cancelled; its paths were freed.') {
    super('CANCELLED', message);
  }
}

/** A WebGPU limit the runtime needs is not offered by the adapter. */
export class LimitError extends ForkLMError {
  constructor(message: string) {
    super('LIMIT', message);
  }
}

/** A chat was requested but the model ships no chat template (tokenizer_config.json `chat_template`, GGUF tokenizer.chat_template). */
export class NoChatTemplateError extends ForkLMError {
  constructor(message: string) {
    super('NO_CHAT_TEMPLATE', message);
  }
}

/** A GPU pipeline failed to compile or validate on this adapter. */
export class ShaderError extends ForkLMError {
  constructor(message: string) {
    super('SHADER', message);
  }
}

/**
 * A remote server engine (llama.cpp server, vLLM, SGLang) could not be used: unreachable, stopped mid-run, too slow
 * (timeout), an HTTP error after the retries, or a reply forklm cannot read. `reason` tells which.
 */
export class RemoteServerError extends ForkLMError {
  readonly reason: 'unreachable' | 'http' | 'timeout' | 'closed' | 'protocol';
  readonly status: number | null;
  constructor(reason: RemoteServerError['reason'], message: string, options?: { cause?: unknown; status?: number }) {
    super('REMOTE_SERVER', message, options);
    this.reason = reason;
    this.status = options?.status ?? null;
  }
}

/** The server lacks something a branching controller needs (log-probs, token-id prompts, enough top log-probs). */
export class RemoteFeatureError extends ForkLMError {
  readonly feature: string;
  constructor(feature: string, message: string) {
    super('REMOTE_FEATURE', message);
    this.feature = feature;
  }
}

/** A Web Worker engine's worker could not start, died, or was destroyed (worker/client.ts). */
export class WorkerError extends ForkLMError {
  constructor(message: string) {
    super('WORKER', message);
  }
}
