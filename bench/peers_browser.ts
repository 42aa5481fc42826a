// The page half of the peers benchmark: a Vite dev server (free localhost port) serves bench/peers_page/ with
// cross-origin isolation headers (COOP same-origin, COEP require-corp: wllama's threads need SharedArrayBuffer), and
// headless Chromium on llvmpipe's GL route (browser.ts LAUNCH_ARGS) runs the job with forklm and with wllama in the
// same page and on the same CPU. forklm runs on the page's llvmpipe adapter; wllama computes in WebAssembly on the CPU,
// because ggml's WebGPU backend needs shader-f16, which neither of Chromium's CPU adapters offers (it then registers
// no device; its "CPU model buffer" log line, kept in the JSON, says so).
import { join, resolve } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { createServer } from 'vite';
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { errorText, log, modelsDir } from './bench_models.js';
import { LAUNCH_ARGS } from './browser.js';
import type { Job } from './peers_page/main.js';
import { peersDir } from './peers_install.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TIMEOUT_MS = 300_000;
const WLLAMA_BUDGET_MS = 1000 * Number(process.env.FORKLM_BENCH_WLLAMA_BUDGET_S ?? 90);

async function startServer(): Promise<{ close: () => Promise<void>; origin: string }> {
  const server = await createServer({
    configFile: false,
    root: repoRoot,
    appType: 'mpa',
    logLevel: 'warn',
    clearScreen: false,
    cacheDir: join(repoRoot, 'node_modules', '.vite', 'bench-peers'),
    server: {
      host: '127.0.0.1',
      port: 0,
      hmr: false,
      watch: null,
      headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
      fs: { allow: [repoRoot, resolve(modelsDir()), peersDir()] },
    },
    optimizeDeps: { entries: ['bench/peers_page/index.html'] },
  });
  await server.listen();
  const addr = server.httpServer!.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { close: () => server.close(), origin: `http://127.0.0.1:${port}` };
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took over ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface WllamaRun {
  threads: number;
  /** One request after another (prompt reused), or all samples at once in as many server slots. */
  mode: 'sequential' | 'concurrent';
}

/**
 * forklm and wllama in one Chromium page; each part's failure is recorded and the other still runs. Each wllama run
 * has WLLAMA_BUDGET_MS for its timed job repeats (FORKLM_BENCH_WLLAMA_BUDGET_S overrides).
 */
export async function inPage(job: Job & { threshold: number }, promptText: string, wllamaRuns: WllamaRun[]): Promise<object> {
  const { close, origin } = await startServer();
  const adapter: AdapterChoice = 'llvmpipe';
  const args = LAUNCH_ARGS.llvmpipe;
  let browser: Browser | null = null;
  const out: Record<string, unknown> = { launch: 'headless Chromium, GL route (llvmpipe)', args };
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
    out.chromium = browser.version();
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') log(`[peers page] ${m.text()}`);
    });
    await page.goto(`${origin}/bench/peers_page/index.html`);
    await page.waitForFunction(() => window.forklmPeers !== undefined, undefined, { timeout: 120_000 });
    out.crossOriginIsolated = await page.evaluate(() => globalThis.crossOriginIsolated);
    const fs = (p: string) => `${origin}/@fs${resolve(p)}`;
    const modelUrl = `${fs(join(modelsDir(), 'stories260K', 'hf'))}/`;
    try {
      log('peers page: forklm');
      out.forklm = await withTimeout(page.evaluate((o) => window.forklmPeers!.forklm(o), { modelUrl, adapter, job }), 'forklm in the page');
    } catch (e) {
      out.forklm = { error: errorText(e) };
    }
    const wl = join(peersDir(), 'node_modules/@wllama/wllama/esm');
    out.wllama = [];
    for (const { threads, mode } of wllamaRuns) {
      const parallel = mode === 'concurrent' ? job.samples : 1;
      const o = { esmUrl: fs(join(wl, 'index.js')), wasmUrl: fs(join(wl, 'wasm/wllama.wasm')), ggufUrl: fs(join(modelsDir(), 'stories260K/gguf/stories260K.gguf')), promptText, threads, parallel, mode, budgetMs: WLLAMA_BUDGET_MS, job };
      try {
        log(`peers page: wllama, ${mode}, ${threads} threads`);
        (out.wllama as object[]).push(await withTimeout(page.evaluate((x) => window.forklmPeers!.wllama(x), o), 'wllama in the page'));
      } catch (e) {
        (out.wllama as object[]).push({ threads, mode, error: errorText(e) });
      }
    }
  } catch (e) {
    out.error = errorText(e);
  } finally {
    await browser?.close();
    await close();
  }
  return out;
}
