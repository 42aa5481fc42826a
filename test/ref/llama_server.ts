// llama.cpp's server (../shared/bin/llama-server, see its README) as a reference in tests: one slot of 512 tokens, one
// thread, stopped by the test (the launcher is scripts/llama_server.ts). A missing binary fails the test (CI has
// ../shared); scripts/setup.sh installs libgomp1, the one library it needs beyond the C/C++ runtime.
import { startLlamaServer as start } from '../../scripts/llama_server.js';

export interface LlamaServer {
  url: string;
  /** llama.cpp's token ids of `text` (/tokenize, no BOS, special-token text parsed as text by the server default). */
  tokenize(text: string): Promise<number[]>;
  stop(): Promise<void>;
}

export async function startLlamaServer(model: string, extraArgs: readonly string[] = []): Promise<LlamaServer> {
  const server = await start({ model, slots: 1, slotCtx: 512, extra: extraArgs });
  const url = server.url;
  return {
    url,
    async tokenize(text: string): Promise<number[]> {
      const r = await fetch(`${url}/tokenize`, { method: 'POST', body: JSON.stringify({ content: text, add_special: false }) });
      if (!r.ok) throw new Error(`llama-server /tokenize: HTTP ${r.status} ${await r.text()}`);
      return ((await r.json()) as { tokens: number[] }).tokens;
    },
    stop: server.stop,
  };
}
