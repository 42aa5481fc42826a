// llama.cpp's server (../shared/bin/llama-server, see its README) as a reference in tests: started on 127.0.0.1 and a
// free port, one thread, stopped by the test. A missing binary fails the test (CI has ../shared); scripts/setup.sh
// installs libgomp1, the one library it needs beyond the C/C++ runtime.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { sharedFixturesDir } from './fixtures.js';

export function llamaServerPath(): string {
  const p = process.env.FORKLM_LLAMA_SERVER ?? join(sharedFixturesDir(), '../bin/llama-server');
  if (!existsSync(p)) throw new Error(`llama-server not found at ${p}; set FORKLM_LLAMA_SERVER`);
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LlamaServer {
  url: string;
  /** llama.cpp's token ids of `text` (/tokenize, no BOS, special-token text parsed as text by the server default). */
  tokenize(text: string): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startLlamaServer(model: string, extraArgs: readonly string[] = []): Promise<LlamaServer> {
  const port = await freePort();
  const args = ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-t', '1', '-c', '512', '-np', '1', '--no-warmup', ...extraArgs];
  const proc: ChildProcess = spawn(llamaServerPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`llama-server exited with ${proc.exitCode}: ${log}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`llama-server did not become healthy in 60 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async tokenize(text: string): Promise<number[]> {
      const r = await fetch(`${url}/tokenize`, { method: 'POST', body: JSON.stringify({ content: text, add_special: false }) });
      if (!r.ok) throw new Error(`llama-server /tokenize: HTTP ${r.status} ${await r.text()}`);
      return ((await r.json()) as { tokens: number[] }).tokens;
    },
    stop,
  };
}
