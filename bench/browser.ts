// The benchmarks in headless Chromium: a Vite dev server (programmatic, on a free localhost port) serves
// bench/browser_page/, which runs kernels, decode, batch, EAB and peaks with src/ modules on stories260K fetched over
// HTTP. Chromium is launched twice through playwright-core: with the test flags (SwiftShader, Vulkan), and with the GL
// route (--use-angle=gl-egl --use-webgpu-adapter=opengles: llvmpipe, compatibility mode). Results come back through
// page.evaluate, one section at a time, so a failing section is recorded and the others still run.
// FORKLM_BENCH_ADAPTERS (comma list of swiftshader, llvmpipe) narrows the launches; FORKLM_BENCH_QUICK=1 runs tiny
// counts; FORKLM_MODELS is the folder holding stories260K/ (default ../shared/models).
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { CHROMIUM_ARGS, CHROMIUM_GL_ARGS } from '../vitest.config.js';
import { errorText, hostRecord, log, modelsDir as benchModelsDir, QUICK } from './bench_models.js';
import { SECTIONS, type AdapterRecord, type BrowserAdapter, type Section } from './browser_page/api.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const CHROMIUM = '/usr/bin/chromium';
/** A section that takes longer than this is recorded as an error and ends its launch (a hung device, a lost page). */
const SECTION_TIMEOUT_MS = 180_000;

/**
 * Chromium flags per adapter: the test flags from vitest.config.ts, plus the GL route for llvmpipe. On that route
 * Chromium hides the adapter's identity (vendor, architecture and description all '') unless
 * --enable-webgpu-developer-features is set; without it forklm cannot tell llvmpipe from a GPU (isCpu false) and runs
 * the GPU kernel variants. The flag only exposes adapter info, so the benchmark measures forklm as it runs on llvmpipe.
 */
export const LAUNCH_ARGS: Record<BrowserAdapter, string[]> = {
  swiftshader: [...CHROMIUM_ARGS],
  llvmpipe: [...CHROMIUM_GL_ARGS],
};

function launches(): BrowserAdapter[] {
  const env = process.env.FORKLM_BENCH_ADAPTERS;
  if (!env) return ['swiftshader', 'llvmpipe'];
  const names = env.split(',').map((s) => s.trim());
  const bad = names.filter((n) => n !== 'swiftshader' && n !== 'llvmpipe');
  if (bad.length) throw new Error(`FORKLM_BENCH_ADAPTERS=${env}: the browser benchmark knows swiftshader and llvmpipe, not ${bad.join(', ')}`);
  return names as BrowserAdapter[];
}

/** The folder holding stories260K/hf/ (bench_models.ts modelsDir), as an absolute path for the dev server's /@fs/. */
function modelsDir(): string {
  const dir = resolve(benchModelsDir());
  if (!existsSync(join(dir, 'stories260K', 'hf', 'model.safetensors')))
    throw new Error(`stories260K not found at ${join(dir, 'stories260K', 'hf')}; set FORKLM_MODELS to the folder holding stories260K/`);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => (port ? ok(port) : fail(new Error('no free port'))));
    });
  });
}

async function startServer(models: string): Promise<{ server: ViteDevServer; origin: string }> {
  const port = await freePort();
  const server = await createServer({
    configFile: false,
    root: repoRoot,
    appType: 'mpa', // a missing file answers 404, not index.html: the model loader relies on it for optional files
    logLevel: 'warn',
    clearScreen: false,
    cacheDir: join(repoRoot, 'node_modules', '.vite', 'bench-browser'),
    server: { host: '127.0.0.1', port, strictPort: true, hmr: false, watch: null, fs: { allow: [repoRoot, models] } },
    // Scan the page's imports up front, so dependency optimisation never reloads the page mid-run.
    optimizeDeps: { entries: ['bench/browser_page/index.html'] },
  });
  await server.listen();
  return { server, origin: `http://127.0.0.1:${port}` };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface LaunchResult {
  adapter: BrowserAdapter;
  args: string[];
  chromium?: string;
  date: string;
  userAgent?: string;
  adapterInfo?: AdapterRecord;
  error?: string;
  totalMs?: number;
  sections: Partial<Record<Section, object>>;
}

async function benchLaunch(adapter: BrowserAdapter, origin: string, modelUrl: string): Promise<LaunchResult> {
  const args = LAUNCH_ARGS[adapter];
  const out: LaunchResult = { adapter, args, date: new Date().toISOString(), sections: {} };
  const t0 = performance.now();
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
    out.chromium = browser.version();
    const page: Page = await browser.newPage();
    page.on('pageerror', (e) => log(`[${adapter}] page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log(`[${adapter}] console ${m.type()}: ${m.text()}`);
    });
    await page.goto(`${origin}/bench/browser_page/index.html`);
    await page.waitForFunction(() => window.forklmBench !== undefined, undefined, { timeout: 60_000 });
    out.userAgent = await page.evaluate(() => navigator.userAgent);
    const setup = { adapter, modelUrl, quick: QUICK };
    out.adapterInfo = await withTimeout(
      page.evaluate((o) => window.forklmBench!.setup(o), setup),
      SECTION_TIMEOUT_MS,
      'setup',
    );
    log(`[${adapter}] ${out.adapterInfo.name} (isCpu ${out.adapterInfo.isCpu}), stories260K loaded in ${out.adapterInfo.model.loadMs} ms`);
    if (!out.adapterInfo.matchesLaunch) log(`[${adapter}] WARNING: the page got ${out.adapterInfo.name}, not ${adapter}`);
    for (const section of SECTIONS) {
      const s0 = performance.now();
      try {
        out.sections[section] = await withTimeout(
          page.evaluate((s) => window.forklmBench!.run(s), section),
          SECTION_TIMEOUT_MS,
          section,
        );
        log(`[${adapter}] ${section}: ${((performance.now() - s0) / 1000).toFixed(1)} s`);
      } catch (e) {
        out.sections[section] = { error: errorText(e) };
        log(`[${adapter}] ${section} failed: ${errorText(e)}`);
        if (/took over/.test(errorText(e))) break; // the page is stuck: later sections would wait on it
      }
    }
    await page.evaluate(() => window.forklmBench!.teardown()).catch(() => undefined);
  } catch (e) {
    out.error = errorText(e);
    log(`[${adapter}] failed: ${out.error}`);
  } finally {
    await browser?.close().catch(() => undefined);
  }
  out.totalMs = Math.round(performance.now() - t0);
  return out;
}

// ---- The Node numbers the same methods gave (bench/results/*.json, when present), for a like-for-like comparison.
type Json = Record<string, unknown>;
function readResult(name: string): Json | null {
  const p = join(resultsDir, `${name}.json`);
  try {
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Json) : null;
  } catch {
    return null;
  }
}
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const get = (o: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Json)[k] : undefined), o);

export interface ComparisonRow {
  metric: string;
  adapter: BrowserAdapter;
  unit: string;
  node: number | null;
  chromium: number | null;
  /** chromium / node (> 1: Chromium faster for rates, slower for times). */
  ratio: number | null;
  /** Where the two differ in settings (counts, N), so the numbers are not read as like for like. */
  caveat?: string;
}

/** Pairs Chromium's numbers with Node's from bench/results/*.json (null where Node has none for that adapter). */
export function compareWithNode(launchesOut: LaunchResult[]): { sources: Record<string, string | null>; rows: ComparisonRow[] } {
  const kernels = readResult('kernels');
  const decode = readResult('decode');
  const batch = readResult('batch');
  const eab = readResult('eab');
  const stamp = (j: Json | null) => (j ? `${String(j.date ?? '?')}${j.quick ? ' (QUICK run)' : ''}` : null);
  const rows: ComparisonRow[] = [];
  const push = (r: Omit<ComparisonRow, 'ratio'>) => {
    if (r.node === null && r.chromium === null) return;
    rows.push({ ...r, ratio: r.node && r.chromium ? Number((r.chromium / r.node).toPrecision(3)) : null });
  };
  for (const l of launchesOut) {
    const a = l.adapter;
    const s = l.sections as Record<string, Json | undefined>;
    const nk = arr(kernels?.adapters).find((x) => x.adapter === a);
    for (const m of arr(s.kernels?.matmul)) {
      // Node's kernels.json: the picked variant per shape in matmul, both CPU variants forced in sweep (llvmpipe).
      const same = (x: Json) => x.M === m.M && x.variant === m.variant;
      const nm = arr(nk?.matmul).find((x) => x.label === 'square 2048' && same(x)) ?? arr(nk?.sweep).find(same);
      push({ metric: `matmul K=N=2048 M=${String(m.M)} ${String(m.variant)}`, adapter: a, unit: 'GFLOP/s', node: num(nm?.gflops), chromium: num(m.gflops) });
    }
    const nd = arr(decode?.cases).find((x) => x.model === 'stories260K' && x.adapter === a);
    const cd = s.decode;
    push({ metric: `stories260K prefill ${String(get(cd, 'prefill', 'promptTokens'))} tokens`, adapter: a, unit: 'tokens/s', node: num(get(nd, 'prefill', 'tokensPerS')), chromium: num(get(cd, 'prefill', 'tokensPerS')) });
    push({ metric: 'stories260K decode, one path', adapter: a, unit: 'tokens/s', node: num(get(nd, 'decode', 'tokensPerS')), chromium: num(get(cd, 'decode', 'tokensPerS')) });
    const nb = arr(batch?.cases).find((x) => x.model === 'stories260K' && x.adapter === a);
    for (const r of arr(s.batch?.results)) {
      const n = arr(nb?.results).find((x) => x.B === r.B);
      push({ metric: `stories260K batch B=${String(r.B)}`, adapter: a, unit: 'tokens/s', node: num(n?.tokensPerS), chromium: num(r.tokensPerS) });
    }
    for (const c of arr(s.eab?.cases)) {
      const n = arr(eab?.cases).find((x) => x.model === 'stories260K' && x.adapter === a && x.promptTokens === c.promptTokens);
      const settings = (x: unknown) => `N=${String(get(x, 'samples'))}, ${String(get(x, 'newTokens'))} new`;
      const caveat = n && (n.samples !== s.eab?.samples || n.newTokens !== s.eab?.newTokens) ? `Node ${settings(n)}, Chromium ${settings(s.eab)}` : undefined;
      for (const mode of ['naive', 'forkAt0', 'eab']) {
        push({ metric: `stories260K ${mode} L=${String(c.promptTokens)} wall clock`, adapter: a, unit: 'ms', node: num(get(n, mode, 'ms')), chromium: num(get(c, mode, 'ms')), caveat });
      }
    }
  }
  return { sources: { kernels: stamp(kernels), decode: stamp(decode), batch: stamp(batch), eab: stamp(eab) }, rows };
}

export async function run(): Promise<object> {
  const models = modelsDir();
  const { server, origin } = await startServer(models);
  const modelUrl = `${origin}/@fs${join(models, 'stories260K', 'hf')}/`;
  log(`vite dev server at ${origin}`);
  const out: Partial<Record<BrowserAdapter, LaunchResult>> = {};
  try {
    for (const adapter of launches()) {
      log(`[${adapter}] launching chromium`);
      out[adapter] = await benchLaunch(adapter, origin, modelUrl);
    }
  } finally {
    await server.close();
  }
  const done = Object.values(out);
  return {
    date: new Date().toISOString(),
    machine: hostRecord(),
    chromium: done.find((l) => l.chromium)?.chromium ?? null,
    quick: QUICK,
    note:
      'Headless Chromium through playwright-core, one launch per software adapter; sections run in the page with src/ ' +
      'modules on stories260K fetched from a Vite dev server. Medians over repeats on a shared 2-core machine: noisy. ' +
      'comparison pairs these with bench/results/*.json from Node where the same case exists.',
    ...out,
    comparison: compareWithNode(done),
  };
}
