// Starts ../shared/bin/llama-server (FORKLM_LLAMA_SERVER overrides) on a GGUF, bound to 127.0.0.1 on a free port, and
// stops it: the one launcher of the remote-engine tests (test/remote/), the CLI test and bench/remote.ts. A missing
// binary throws: CI has it, and a test that skipped silently would hide that.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function llamaServerPath(): string {
  const p = process.env.FORKLM_LLAMA_SERVER ?? join(repoRoot, '../shared/bin/llama-server');
  if (!existsSync(p)) throw new Error(`llama-server not found at ${p}; set FORKLM_LLAMA_SERVER (see ../shared/bin/README.md).`);
  return p;
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface RunningServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Kills the server at once (SIGKILL): a server dying mid-run. */
  kill(): Promise<void>;
  /** Its stderr so far (the last 20,000 characters, for failure messages). */
  log(): string;
}

export interface LlamaServerOptions {
  /** The GGUF to serve. */
  model: string;
  /** Parallel slots (-np; default 8). */
  slots?: number;
  /** Context per slot in tokens (default 512; -c is slots x this). */
  slotCtx?: number;
  /** CPU threads (-t; default 1: llama.cpp's threads spin at their barriers, and on a busy 2-core machine two threads
   * ran 7x slower than one, bench/RESULTS.md "Remote engine"). */
  threads?: number;
  /** Further llama-server flags. */
  extra?: readonly string[];
  /** Longest wait for /health (default 60 s: a loaded CI machine needs more than the second an idle one takes). */
  healthTimeoutMs?: number;
}

/** Starts llama-server and waits until /health answers; throws with its log if it exits or stalls. */
export async function startLlamaServer(options: LlamaServerOptions): Promise<RunningServer> {
  const slots = options.slots ?? 8;
  const ctx = (options.slotCtx ?? 512) * slots;
  const port = await freePort();
  const args = ['-m', options.model, '--host', '127.0.0.1', '--port', String(port), '-t', String(options.threads ?? 1)];
  args.push('-c', String(ctx), '-np', String(slots), '--no-warmup', ...(options.extra ?? []));
  const child: ChildProcess = spawn(llamaServerPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log = (log + d).slice(-20_000)));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`llama-server exited with ${child.exitCode}:\n${log}`);
      try {
        const r = await fetch(`${url}/health`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      const limit = options.healthTimeoutMs ?? 60_000;
      if (Date.now() - t0 > limit) throw new Error(`llama-server did not become healthy in ${limit / 1000} s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  return { url, port, stop, kill, log: () => log };
}
