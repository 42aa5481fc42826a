// A recording proxy in front of llama-server, for replay tests. llama.cpp's numbers for one request depend on what
// else its batch and its slot's KV cells held (test/remote/branching.test.ts measures it), so two live runs of one
// seed may part at a near-tie. This proxy separates forklm's part from the server's: in `record` mode it forwards
// every completion request and keeps its streamed reply, keyed by the request body; in `replay` mode it answers each
// completion request with the reply recorded for the same body, chunk by chunk after random delays (so replies
// arrive in another order and at other times than when recorded). Everything else (/v1/models, /props, /tokenize)
// goes to the server.
//
// A reply that the client aborted while recording is replayed and then held open, as the server's was; a request
// never recorded is held open unanswered, so a client that needs it fails by its timeout and one that lets it go
// (as it let go of the recorded one) aborts it. `unrecorded` counts those requests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ReplayProxy {
  url: string;
  mode: 'record' | 'replay';
  /** Most milliseconds between two replayed chunks (each delay uniform in [0, jitterMs]). */
  jitterMs: number;
  /** Forgets every recording. */
  clear(): void;
  /** Completion requests recorded, and requests replay could not answer. */
  recorded(): number;
  unrecorded(): number;
  /** The bodies of the requests replay could not answer (for failure messages). */
  unrecordedBodies(): string[];
  /** The bodies recorded. */
  recordedBodies(): string[];
  close(): Promise<void>;
}

interface Recording {
  chunks: Uint8Array[];
  /** The server ended the stream (false: the client aborted it first). */
  complete: boolean;
}

const COMPLETION_PATHS = new Set(['/completion', '/v1/completions']);

export async function startReplayProxy(upstream: string): Promise<ReplayProxy> {
  const recordings = new Map<string, Recording[]>();
  const served = new Map<string, number>();
  let unrecorded = 0;
  const missing: string[] = [];
  const state = { mode: 'record' as 'record' | 'replay', jitterMs: 0 };

  const forward = async (req: IncomingMessage, body: string, res: ServerResponse, keep?: Recording) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const up = await fetch(upstream + req.url, {
        method: req.method,
        headers: { 'Content-Type': 'application/json' },
        body: req.method === 'GET' ? undefined : body,
        signal: abort.signal,
      });
      res.writeHead(up.status, { 'Content-Type': up.headers.get('content-type') ?? 'application/json' });
      const reader = up.body!.getReader();
      for (let c = await reader.read(); !c.done; c = await reader.read()) {
        keep?.chunks.push(c.value);
        res.write(c.value);
      }
      if (keep) keep.complete = true;
      res.end();
    } catch {
      // The client went away (or the server did): the recording keeps what arrived before.
      res.destroy();
    }
  };

  const replay = async (key: string, res: ServerResponse) => {
    const list = recordings.get(key);
    const i = served.get(key) ?? 0;
    if (!list || i >= list.length) {
      unrecorded++;
      missing.push(key);
      return; // held open, unanswered
    }
    served.set(key, i + 1);
    const rec = list[i];
    let gone = false;
    res.on('close', () => (gone = true));
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    for (const chunk of rec.chunks) {
      await new Promise((r) => setTimeout(r, Math.random() * state.jitterMs));
      if (gone) return;
      res.write(chunk);
    }
    if (rec.complete) res.end();
  };

  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8');
      if (req.method !== 'POST' || !COMPLETION_PATHS.has(req.url ?? '')) return void forward(req, body, res);
      const key = `${req.url} ${body}`;
      if (state.mode === 'replay') return void replay(key, res);
      const rec: Recording = { chunks: [], complete: false };
      recordings.set(key, [...(recordings.get(key) ?? []), rec]);
      void forward(req, body, res, rec);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    /** 'replay' serves the recording from its start; 'record' adds to it (clear() starts a new one). */
    set mode(m) {
      state.mode = m;
      served.clear();
      unrecorded = 0;
      missing.length = 0;
    },
    get jitterMs() {
      return state.jitterMs;
    },
    set jitterMs(ms) {
      state.jitterMs = ms;
    },
    clear: () => recordings.clear(),
    recorded: () => [...recordings.values()].reduce((a, l) => a + l.length, 0),
    unrecorded: () => unrecorded,
    unrecordedBodies: () => [...missing],
    recordedBodies: () => [...recordings.keys()],
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
