// Starts ../shared/bin/llama-server (FORKLM_LLAMA_SERVER overrides) on stories260K's GGUF, bound to 127.0.0.1 on a free
// port, and stops it. A missing binary fails the test that needs it: CI has it, and a silent skip would hide that.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedModelsDir } from '../ref/shared_models.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function llamaServerPath(): string {
  const p = process.env.FORKLM_LLAMA_SERVER ?? join(repoRoot, '../shared/bin/llama-server');
  if (!existsSync(p)) throw new Error(`llama-server not found at ${p}; set FORKLM_LLAMA_SERVER (see ../shared/bin/README.md).`);
  return p;
}

export function storiesGguf(): string {
  return join(sharedModelsDir(), 'stories260K/gguf/stories260K.gguf');
}

function freePort(): Promise<number> {
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
  /** Its stderr so far (for failure messages). */
  log(): string;
}

/** Starts llama-server with `slots` parallel slots, each with a context of `slotCtx` tokens. */
export async function startLlamaServer(options: { slots?: number; slotCtx?: number; extra?: string[] } = {}): Promise<RunningServer> {
  const slots = options.slots ?? 8;
  const ctx = (options.slotCtx ?? 512) * slots;
  const port = await freePort();
  const args = ['-m', storiesGguf(), '--host', '127.0.0.1', '--port', String(port), '-t', '1', '-c', String(ctx), '-np', String(slots), '--no-warmup', ...(options.extra ?? [])];
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
      if (Date.now() - t0 > 30_000) throw new Error(`llama-server did not become healthy in 30 s:\n${log}`);
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
