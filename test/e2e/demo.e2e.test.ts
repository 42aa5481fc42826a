// End to end: the demo page, served by a Vite dev server started here, driven by Chromium on its software WebGPU
// adapter (SwiftShader). Its engine runs in a Web Worker. It loads stories260K from the local model folder through the page's /models/ route, runs EAB
// with small parameters, and checks that the tree, the samples and the stats agree with one another. Screenshots go
// to bench/screenshots/ (git-ignored).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelDirs, modelFile } from '../../vite.config.js';
import { CHROMIUM_ARGS } from '../../vitest.config.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(root, 'bench', 'screenshots');
const missing = [
  existsSync(CHROMIUM) ? null : `${CHROMIUM} (run scripts/setup.sh)`,
  modelFile('stories260K', 'model.safetensors') ? null : 'stories260K in ../shared/models or FORKLM_MODELS',
].filter(Boolean);
// CI installs Chromium and has the models: a missing one is a broken setup, so the test fails rather than skips.
if (missing.length) throw new Error(`demo e2e cannot run: missing ${missing.join(', ')}`);

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise((ok) => s.close(ok));
  return port;
}

/** Waits until the page's status leaves the transient states; returns the state and any message shown. */
async function settle(page: Page, states: string[], timeout: number): Promise<{ state: string; message: string }> {
  await page.waitForFunction((want) => want.includes(document.getElementById('status')?.dataset.state ?? ''), states, { timeout });
  return {
    state: (await page.getAttribute('#status', 'data-state')) ?? '',
    message: ((await page.textContent('#message')) ?? '').trim(),
  };
}

const numbers = (page: Page, selector: string, attr: string) =>
  page.$$eval(selector, (els, a) => els.map((e) => Number(e.getAttribute(a))), attr);

describe('demo page in Chromium', () => {
  let server: ViteDevServer;
  let browser: Browser;
  let url: string;

  beforeAll(async () => {
    execFileSync(process.execPath, [join(root, 'scripts', 'gen-shaders.mjs')]);
    const port = await freePort();
    server = await createServer({
      configFile: join(root, 'vite.config.ts'),
      logLevel: 'error',
      clearScreen: false,
      // No HMR and no watcher: edits elsewhere in the checkout must not reload the page mid-test.
      server: { host: '127.0.0.1', port, strictPort: true, hmr: false, watch: null },
    });
    await server.listen();
    url = `http://127.0.0.1:${port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    mkdirSync(SHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs EAB on stories260K and shows a tree, samples and stats that agree', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await page.goto(url);
      const loaded = await settle(page, ['ready', 'error', 'no-webgpu'], 90_000);
      expect(loaded, 'the default model loads').toEqual({ state: 'ready', message: '' });
      // The model runs in a Web Worker (createWorkerEngine), not on the page's main thread.
      expect(await page.textContent('#model-status')).toMatch(/in a worker\.$/);
      expect(page.workers().length, 'the engine worker').toBeGreaterThan(0);

      await page.click('label:has(input[name=mode][value=eab])');
      // Small enough to take seconds on SwiftShader, large enough that stories260K branches (with seed 0: 6 samples on
      // both CPU adapters; some seeds stay on one confident path for 20 tokens).
      const params = { max_new_tokens: 20, max_paths: 6, branch_factor: 3, entropy_threshold: 0.4, seed: 0 };
      for (const [k, v] of Object.entries(params)) await page.fill(`#param-${k}`, String(v));
      await page.click('#run');
      const done = await settle(page, ['done', 'error', 'stopped'], 120_000);
      expect(done).toMatchObject({ state: 'done', message: '' });

      const stat = async (key: string) => Number(await page.getAttribute(`[data-stat="${key}"]`, 'data-value'));
      const samplePaths = await numbers(page, '.sample', 'data-path');
      const sampleTokens = await numbers(page, '.sample', 'data-tokens');
      const finishedLeaves = await numbers(page, '[data-leaf][data-end="eos"], [data-leaf][data-end="length"]', 'data-leaf');
      const allLeaves = await numbers(page, '[data-leaf]', 'data-leaf');
      const pruned = await page.$$eval('[data-leaf][data-end="pruned"]', (els) => els.length);

      // The tree: one leaf per path, none still running, every finished leaf is a listed sample.
      expect(await page.getAttribute('svg.forklm-tree[data-paths]', 'data-paths')).toBe(String(allLeaves.length));
      expect(await page.$$eval('[data-leaf][data-end="live"]', (els) => els.length)).toBe(0);
      expect(samplePaths.length, 'EAB branched into several samples').toBeGreaterThan(1);
      expect([...finishedLeaves].sort((a, b) => a - b)).toEqual([...samplePaths].sort((a, b) => a - b));
      expect(await page.$$eval('svg.forklm-tree[data-paths] .t-fork', (els) => els.length), 'fork nodes drawn').toBeGreaterThan(0);
      // A sample's length is where its leaf sits in the tree.
      for (const [i, p] of samplePaths.entries()) {
        expect(Number(await page.getAttribute(`[data-leaf="${p}"]`, 'data-at')), `sample #${p}`).toBe(sampleTokens[i]);
        expect(sampleTokens[i]).toBeLessThanOrEqual(params.max_new_tokens);
      }
      for (const text of await page.$$eval('.sample .text', (els) => els.map((e) => e.textContent ?? '')))
        expect(text.startsWith('Once upon a time') && text.length > 'Once upon a time'.length).toBe(true);

      // The stats: the same counts as the tree, and fewer token steps than independent sampling.
      const promptTokens = await stat('prompt_tokens');
      expect(await stat('samples')).toBe(samplePaths.length);
      expect(await stat('pruned')).toBe(pruned);
      expect(await stat('forks')).toBe(allLeaves.length - 1);
      expect(promptTokens).toBeGreaterThan(0);
      expect(await stat('naive_token_steps')).toBe(samplePaths.length * promptTokens + sampleTokens.reduce((a, b) => a + b, 0));
      expect(await stat('token_steps')).toBeLessThan(await stat('naive_token_steps'));
      expect(await stat('pages_peak')).toBeGreaterThan(0);
      expect(await stat('tokens_per_s')).toBeGreaterThan(0);
      expect(pageErrors).toEqual([]);

      // Back to the top: the sticky controls would otherwise be drawn where the Generate click scrolled them.
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SHOTS, 'demo-eab-desktop.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300); // the page redraws the tree 150 ms after a resize
      await page.screenshot({ path: join(SHOTS, 'demo-eab-phone.png'), fullPage: true });
    } finally {
      await page.close();
    }
  }, 240_000);

  it('says so clearly when the browser has no WebGPU or a Hugging Face download fails; loads picked files', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
      await page.goto(url);
      const s = await settle(page, ['no-webgpu', 'ready', 'error'], 30_000);
      expect(s.state).toBe('no-webgpu');
      expect(s.message).toMatch(/no WebGPU/);
      expect(await page.isDisabled('#run')).toBe(true);
    } finally {
      await page.close();
    }

    const hf = await browser.newPage();
    try {
      // No network here, and none wanted: every request to the hub fails as it would offline.
      await hf.route('https://huggingface.co/**', (r) => r.abort('internetdisconnected'));
      await hf.goto(url);
      await settle(hf, ['ready', 'error', 'no-webgpu'], 90_000);
      await hf.click('label:has(input[name=source][value=hf])');
      expect(await hf.textContent('#hf-families')).toMatch(/Gemma 3 text.*Phi-3.*GPT-2/);
      await hf.fill('#hf-repo', 'karpathy/tinyllamas');
      await hf.click('#load');
      const s = await settle(hf, ['error'], 30_000);
      expect(s.message).toContain('https://huggingface.co/karpathy/tinyllamas/resolve/main/');
      expect(s.message).toMatch(/download failed/);

      // A file picked (or dropped) by the user: the GGUF copy of the same model.
      const gguf = modelDirs().map((d) => join(d, 'stories260K', 'gguf', 'stories260K.gguf')).find((p) => existsSync(p));
      expect(gguf, 'the shared model folder holds stories260K in GGUF too').toBeDefined();
      await hf.setInputFiles('#files', gguf!);
      expect(await settle(hf, ['ready', 'error'], 60_000)).toEqual({ state: 'ready', message: '' });
      expect(await hf.textContent('#model-status')).toMatch(/^stories260K\.gguf: llama, 5 layers/);
    } finally {
      await hf.close();
    }
  }, 180_000);
});
