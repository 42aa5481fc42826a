// `forklm serve`: an OpenAI-compatible HTTP server over one engine (node:http, no framework). Endpoints:
//   POST /v1/completions, POST /v1/chat/completions (JSON, or server-sent events with `stream: true`),
//   GET /v1/models, GET /health.
// Every request is one session of the engine, so concurrent requests share its forward passes (continuous batching)
// and a prompt's full KV pages are reused by later requests with the same prefix (the engine's prefix cache). A client
// that disconnects cancels its request: its session closes and its pages return to the pool. Errors are OpenAI's error
// objects with OpenAI's statuses (serve/errors.ts); the server keeps serving after any of them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChunkStream } from '../api/completions.js';
import type { Engine } from '../engine.js';
import { ModelNotFoundError } from '../errors.js';
import { HttpError, toOpenAiError } from './errors.js';

export interface ServeOptions {
  /** Interface to bind; default 127.0.0.1 (only this machine). */
  host?: string;
  /** Port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Largest request body in bytes (413 beyond). Default 1 MiB. */
  maxBodyBytes?: number;
  /** Most requests generating at once (429 beyond). Default 64. */
  maxConcurrentRequests?: number;
  /** Most tokens one request may generate over all its choices, n * max_tokens (400 beyond). Default 65,536. */
  maxRequestTokens?: number;
}

export interface RunningServer {
  readonly server: Server;
  /** The URL the server listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Requests being generated now. */
  readonly active: () => number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = toOpenAiError(err);
  if (res.headersSent) {
    // Mid-stream: the status is gone; an error event ends the stream (vLLM does the same).
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(e.body)}\n\ndata: [DONE]\n\n`);
    return;
  }
  send(res, e.status, e.body);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'invalid_request_error', 'REQUEST_TOO_LARGE', `The request body exceeds ${limit} bytes.`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_request_error', 'INVALID_JSON', `The request body is not valid JSON: ${(e as Error).message}.`);
  }
}

/** Starts serving `engine`; resolves once it listens. */
export function serve(engine: Engine, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const maxActive = options.maxConcurrentRequests ?? 64;
  const maxTokens = options.maxRequestTokens ?? 65_536;
  const created = Math.floor(Date.now() / 1000);
  let active = 0;

  const checkBody = (body: unknown): Record<string, unknown> => {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'invalid_request_error', 'INVALID_BODY', 'The request body must be a JSON object.');
    const b = body as Record<string, unknown>;
    if (b.model !== undefined && b.model !== engine.modelName)
      throw new ModelNotFoundError(`The model '${String(b.model)}' does not exist here; this server serves '${engine.modelName}' (GET /v1/models).`);
    const n = typeof b.n === 'number' ? b.n : 1;
    const max = typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : typeof b.max_tokens === 'number' ? b.max_tokens : 0;
    if (n * max > maxTokens)
      throw new HttpError(400, 'invalid_request_error', 'TOO_MANY_TOKENS', `n * max_tokens = ${n * max} exceeds this server's limit of ${maxTokens} tokens per request.`, 'max_tokens');
    return b;
  };

  const generateRoute = async (req: IncomingMessage, res: ServerResponse, chat: boolean): Promise<void> => {
    if (active >= maxActive)
      throw new HttpError(429, 'rate_limit_error', 'TOO_MANY_REQUESTS', `${maxActive} requests are being served; retry shortly.`);
    const body = checkBody(await readJson(req, maxBody));
    const cancel = new AbortController();
    // The client went away before the response was complete: cancel, which frees the request's pages.
    res.on('close', () => {
      if (!res.writableFinished) cancel.abort();
    });
    active++;
    try {
      const result: unknown = chat
        ? await engine.chat.completions.create(body as never, { signal: cancel.signal })
        : await engine.completions.create(body as never, { signal: cancel.signal });
      if (body.stream === true) {
        const stream = result as ChunkStream<unknown>;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        try {
          for await (const chunk of stream) {
            if (cancel.signal.aborted) break;
            res.write(`data: ${JSON.stringify(chunk)}\n\n`);
          }
        } finally {
          await stream.return?.();
        }
        if (!cancel.signal.aborted) res.end('data: [DONE]\n\n');
      } else send(res, 200, result);
    } finally {
      active--;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const routes: Record<string, { method: string; run: () => Promise<void> | void }> = {
      '/health': {
        method: 'GET',
        // forklm's counters ride along: steps run, pages in use and requests being served.
        run: () =>
          send(res, 200, {
            status: 'ok',
            model: engine.modelName,
            active_requests: active,
            engine: { steps: engine.stats.steps, rows: engine.stats.rows, pages_in_use: engine.pagesInUse, pages_peak: engine.stats.pagesPeak },
          }),
      },
      '/v1/models': {
        method: 'GET',
        run: () => send(res, 200, { object: 'list', data: [{ id: engine.modelName, object: 'model', created, owned_by: 'forklm' }] }),
      },
      '/v1/completions': { method: 'POST', run: () => generateRoute(req, res, false) },
      '/v1/chat/completions': { method: 'POST', run: () => generateRoute(req, res, true) },
    };
    const route = routes[path];
    if (!route) throw new HttpError(404, 'invalid_request_error', 'NOT_FOUND', `No route ${method} ${path}; see /v1/models, /v1/completions, /v1/chat/completions, /health.`);
    if (route.method !== method) throw new HttpError(405, 'invalid_request_error', 'METHOD_NOT_ALLOWED', `${path} takes ${route.method}, not ${method}.`);
    await route.run();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        url: `http://${shown}:${addr.port}`,
        active: () => active,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
