// HTTP for the remote engine: JSON requests and server-sent-event streams over the platform's fetch (Node 20+,
// browsers), with a timeout on every wait, retries with exponential backoff for transient failures, and cancellation
// through an AbortSignal. Every failure becomes a RemoteServerError (or CancelledError), never a hang.
import { CancelledError, RemoteServerError } from '../errors.js';

export interface HttpOptions {
  /** Longest wait for the response headers, and between two events of a stream (ms). */
  timeoutMs: number;
  /** Further attempts after a transient failure (connection refused or reset, 429, 502, 503, 504, timeout). */
  retries: number;
  /** First backoff (ms); doubled at each retry, with up to 50% random jitter added. */
  backoffMs: number;
  signal?: AbortSignal;
  /** Extra headers (e.g. Authorization for a hosted server). */
  headers?: Record<string, string>;
}

/** HTTP statuses worth another attempt: rate limited, or a proxy / server briefly unavailable. */
const TRANSIENT_STATUS = new Set([429, 502, 503, 504]);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether a RemoteServerError is worth retrying. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof RemoteServerError)) return false;
  return err.reason === 'unreachable' || err.reason === 'timeout' || (err.reason === 'http' && TRANSIENT_STATUS.has(err.status ?? 0));
}

/** Runs `attempt` until it succeeds, a non-transient error occurs, or the retries are spent. */
export async function withRetries<T>(opts: HttpOptions, attempt: () => Promise<T>, onRetry?: () => void): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (opts.signal?.aborted) throw new CancelledError();
      if (!isTransient(err) || i >= opts.retries) throw err;
      onRetry?.();
      await sleep(opts.backoffMs * 2 ** i * (1 + Math.random() / 2), opts.signal);
    }
  }
}

/**
 * One attempt: POST (or GET without a body) and the response once its headers arrived, with status 2xx.
 * `abort` aborts the request (the caller keeps it for the whole body read).
 */
async function open(url: string, body: unknown, opts: HttpOptions, abort: AbortController): Promise<Response> {
  const onOuter = () => abort.abort();
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  const timer = setTimeout(() => abort.abort(new RemoteServerError('timeout', `${url} sent no response within ${opts.timeoutMs} ms.`)), opts.timeoutMs);
  try {
    const res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'Content-Type': 'application/json', ...opts.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
    });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      const hint = res.status === 404 ? ' This address has no such endpoint: check the URL, and --server-kind (llama.cpp for llama-server, openai for vLLM and SGLang).' : '';
      const shown = /^\s*</.test(text) ? '(an HTML page)' : text.slice(0, 300);
      throw new RemoteServerError('http', `${url} answered HTTP ${res.status}: ${shown}.${hint}`, { status: res.status });
    }
    return res;
  } catch (err) {
    throw toRemoteError(err, url, abort, opts.signal);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuter);
  }
}

/** Maps fetch's failures (TypeError with a cause, AbortError) to forklm's typed errors. */
function toRemoteError(err: unknown, url: string, abort: AbortController, outer?: AbortSignal): Error {
  if (outer?.aborted) return new CancelledError();
  if (err instanceof RemoteServerError || err instanceof CancelledError) return err;
  if (abort.signal.aborted && abort.signal.reason instanceof RemoteServerError) return abort.signal.reason;
  return new RemoteServerError('unreachable', `Could not reach ${url}: ${describe(err)}. Check that the server runs and the URL is right.`, { cause: err });
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? String(err);
}

/** POST (or GET when `body` is undefined) a JSON request and read its JSON reply, with retries. */
export async function requestJson(url: string, body: unknown, opts: HttpOptions, onRetry?: () => void): Promise<unknown> {
  return withRetries(
    opts,
    async () => {
      const abort = new AbortController();
      const res = await open(url, body, opts, abort);
      try {
        return await res.json();
      } catch (err) {
        throw abort.signal.aborted
          ? toRemoteError(err, url, abort, opts.signal)
          : new RemoteServerError('protocol', `${url} sent a reply that is not JSON.`, { cause: err });
      }
    },
    onRetry,
  );
}

/**
 * POST a request whose reply is a server-sent-event stream (`data: {json}` events, `data: [DONE]` at the end as
 * OpenAI servers send) and yield each event's JSON. Opening is retried; a stream that breaks after its first event
 * is not (the caller resumes from the tokens it has). Breaking off the iteration aborts the request.
 */
export async function* streamEvents(url: string, body: unknown, opts: HttpOptions, onRetry?: () => void): AsyncGenerator<unknown> {
  let abort = new AbortController();
  const res = await withRetries(
    opts,
    () => {
      abort = new AbortController();
      return open(url, body, opts, abort);
    },
    onRetry,
  );
  if (!res.body) throw new RemoteServerError('protocol', `${url} sent no body.`);
  const onOuter = () => abort.abort();
  opts.signal?.addEventListener('abort', onOuter, { once: true });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data: string[] = [];
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RemoteServerError('timeout', `${url} sent nothing for ${opts.timeoutMs} ms.`)), opts.timeoutMs);
      });
      let chunk: ReadableStreamReadResult<string>;
      // A read still pending when the timeout wins rejects later, once the request is aborted: that is expected.
      const read = reader.read();
      read.catch(() => undefined);
      try {
        chunk = await Promise.race([read, timeout]);
      } catch (err) {
        throw toRemoteError(err, url, abort, opts.signal);
      } finally {
        clearTimeout(timer);
      }
      if (chunk.done) break;
      buffer += chunk.value;
      // Server-sent events (WHATWG HTML, 9.2): lines end in \n (or \r\n); `data:` lines accumulate, a blank line
      // dispatches the event; other fields (event:, id:, comments) carry nothing these servers use.
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const text = data.join('\n');
            data = [];
            if (text === '[DONE]') return;
            yield parse(url, text);
          }
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('error:')) throw new RemoteServerError('protocol', `${url} reported: ${line.slice(6).trim()}`);
      }
    }
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield parse(url, data.join('\n'));
  } finally {
    opts.signal?.removeEventListener('abort', onOuter);
    abort.abort();
    reader.cancel().catch(() => undefined);
  }
}

function parse(url: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RemoteServerError('protocol', `${url} sent an event that is not JSON: ${text.slice(0, 200)}`, { cause: err });
  }
}
