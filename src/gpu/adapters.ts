// Finding WebGPU adapters, in the browser (navigator.gpu) and in Node (Dawn through the `webgpu` package).
// On a machine without a GPU, Node has two software adapters: llvmpipe through Dawn's OpenGL ES backend in
// compatibility mode, and SwiftShader through Dawn's Vulkan backend. See webgpu-on-cpu.md in ../shared.
import type { AdapterChoice, AdapterKind } from './adapter_choice.js';
import type { RegisterBlocks } from './register_blocks.js';

/** Where Debian's chromium package puts SwiftShader's Vulkan ICD. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface FoundAdapter {
  kind: AdapterKind;
  adapter: GPUAdapter;
  /** true for software adapters: kernels then prefer one thread per output over shared-memory tiles. */
  isCpu: boolean;
  /** Keeps Dawn's instance alive as long as the adapter (Node only). */
  instance?: unknown;
  /** llvmpipe in Node: LP_NUM_THREADS as the process's first llvmpipe device read it (null: Mesa's default). */
  cpuThreads?: number | null;
}

/** Options that reach the driver before the adapter is made (GpuOptions). */
export interface AdapterOptions {
  cpuThreads?: number;
  /**
   * Node only: extra flags for Dawn's instance (the `webgpu` package's create() flags), e.g.
   * `enable-dawn-features=disable_robustness`; a page's Dawn takes them from Chromium's command line instead.
   */
  dawnFlags?: string[];
}

/**
 * The llvmpipe worker-thread count of this process: LP_NUM_THREADS as its first llvmpipe adapter was made with it
 * (null: unset, Mesa's default). Kept on globalThis: the driver outlives a module instance (test runners reload
 * modules in one process).
 */
const THREADS_KEY = Symbol.for('forklm.llvmpipeThreads');
const seen = globalThis as { [THREADS_KEY]?: number | null };

/**
 * LP_NUM_THREADS as Mesa reads it (u_debug.c debug_parse_num_option: strtol with base 0, its default when no digit
 * leads): the leading integer, decimal, 0x hex or 0 octal; null where Mesa keeps its default (unset, no digit) and
 * for a negative count (llvmpipe's unsigned count wraps it to its cap: worker threads, not 0).
 */
export function parseLpNumThreads(value: string | undefined): number | null {
  const m = value === undefined ? null : /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(value);
  if (!m) return null;
  const digits = m[2];
  const n = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits[0] === '0' ? parseInt(digits, 8) : parseInt(digits, 10);
  return m[1] === '-' && n !== 0 ? null : n;
}

export const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

/**
 * Whether a device's kernels run on llvmpipe (Mesa's software rasterizer, 8-lane SIMD batches, a loop-iteration cap):
 * in Node by the adapter's name (a CPU adapter that is not SwiftShader); in a page, where Chromium's llvmpipe adapter
 * is anonymous, by the GL route's register-block form (`unrolled` only on a compatibility-only CPU adapter,
 * gpu/register_blocks.ts). Kernel variants fitted to llvmpipe's batches gate on this.
 */
export function onLlvmpipe(gpu: { isCpu: boolean; name: string; registerBlocks: RegisterBlocks }): boolean {
  return gpu.isCpu && (isNode ? !/swiftshader/i.test(gpu.name) : gpu.registerBlocks === 'unrolled');
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}
let dawn: DawnModule | undefined;

async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  const name = 'webgpu';
  const mod = (await import(/* @vite-ignore */ name)) as DawnModule;
  // Dawn's classes (GPUBufferUsage, GPUShaderStage, ...) are globals in a browser; make them so in Node.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  dawn = mod;
  return mod;
}

function describe(adapter: GPUAdapter): string {
  const i = adapter.info;
  return `${i.vendor} ${i.architecture} ${i.device} ${i.description}`.toLowerCase();
}

/**
 * The adapter names neither vendor, architecture nor description. Chromium names a GPU's vendor and architecture to
 * every page, but hides all three for its OpenGL ES adapter (llvmpipe through ANGLE on a machine without a GPU) unless
 * started with --enable-webgpu-developer-features; isFallbackAdapter is false there, and no feature or limit tells it
 * from a GPU (measured in Chromium 14x on this project's machines: bench/RESULTS.md, "Peers").
 */
export function anonymousAdapter(adapter: GPUAdapter): boolean {
  const i = adapter.info;
  return [i.vendor, i.architecture, i.description].every((v) => !v || !v.trim());
}

function looksSoftware(adapter: GPUAdapter): boolean {
  const d = describe(adapter);
  const fallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    (adapter.info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|llvmpipe|lavapipe|softpipe|software|mesa 2\d\.\d+\.\d+$|^\s*opengl version/.test(d);
}

async function nodeAdapter(kind: Exclude<AdapterKind, 'browser'>, options: AdapterOptions = {}): Promise<FoundAdapter | null> {
  const { create } = await loadDawn();
  const dawnFlags = options.dawnFlags ?? [];
  const env = process.env;
  env.NODEVICE_SELECT ??= '1';
  try {
    if (kind === 'llvmpipe') {
      env.EGL_PLATFORM ??= 'surfaceless';
      // Mesa reads LP_NUM_THREADS whenever requestAdapter makes an llvmpipe screen: for the process's first llvmpipe
      // adapter, and again once every earlier device is gone. The process keeps the count of its first adapter: ours
      // is set for each such moment and removed after it, so processes started later (a Chromium, a peer engine) do
      // not inherit it. One in the environment wins.
      const first = !(THREADS_KEY in seen);
      const given = env.LP_NUM_THREADS ?? (first && options.cpuThreads !== undefined ? String(options.cpuThreads) : undefined);
      const threads = first ? parseLpNumThreads(given) : (seen[THREADS_KEY] ?? null);
      const ours = env.LP_NUM_THREADS === undefined && threads !== null;
      if (ours) env.LP_NUM_THREADS = String(threads);
      const instance = create(['backend=opengles', ...dawnFlags]);
      let adapter: GPUAdapter | null;
      try {
        adapter = await instance.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
      } finally {
        if (ours) delete env.LP_NUM_THREADS;
      }
      if (!adapter) return null;
      if (first) seen[THREADS_KEY] = threads;
      // On a machine with a GPU the GL backend may be hardware; it is still the "llvmpipe" route by configuration.
      return { kind, adapter, isCpu: looksSoftware(adapter), instance, cpuThreads: seen[THREADS_KEY] ?? null };
    }
    if (kind === 'swiftshader') {
      // The Vulkan loader rescans driver files at each instance creation, so adding SwiftShader here works even
      // after an earlier hardware probe.
      const fs = await import(/* @vite-ignore */ 'node:fs');
      if (fs.existsSync(SWIFTSHADER_ICD) && !env.VK_ICD_FILENAMES) env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
      const instance = create([...dawnFlags]);
      const adapter =
        (await instance.requestAdapter({ forceFallbackAdapter: true })) ?? (await instance.requestAdapter());
      if (!adapter || !/swiftshader/.test(describe(adapter))) return null;
      return { kind, adapter, isCpu: true, instance };
    }
    const instance = create([...dawnFlags]);
    const adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter || looksSoftware(adapter)) return null;
    return { kind: 'hardware', adapter, isCpu: false, instance };
  } catch {
    return null;
  }
}

async function browserAdapter(choice: AdapterChoice): Promise<FoundAdapter | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return null;
  // A page cannot pick the backend; Chromium's flags do (--use-webgpu-adapter=opengles for llvmpipe). Ask for
  // compatibility mode when llvmpipe is wanted, since the GL backend only exists there.
  const options: GPURequestAdapterOptions =
    choice === 'llvmpipe' ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions) : { powerPreference: 'high-performance' };
  let adapter = await gpu.requestAdapter(options);
  if (!adapter && choice === 'auto') adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  // Chromium's llvmpipe route reports an empty adapter description (unless started with
  // --enable-webgpu-developer-features): when the caller asked for llvmpipe, believe the caller.
  return adapter ? { kind: 'browser', adapter, isCpu: choice === 'llvmpipe' || looksSoftware(adapter) } : null;
}

/** The adapter forklm would use for `choice`, or null. Order for `auto`: hardware, llvmpipe, SwiftShader. */
export async function findAdapter(choice: AdapterChoice, options: AdapterOptions = {}): Promise<FoundAdapter | null> {
  if (!isNode) return browserAdapter(choice);
  const order: Exclude<AdapterKind, 'browser'>[] = choice === 'auto' ? ['hardware', 'llvmpipe', 'swiftshader'] : [choice];
  for (const kind of order) {
    const found = await nodeAdapter(kind, options);
    if (found) return found;
  }
  return null;
}

/** Every adapter forklm can get on this machine (for `forklm doctor`). */
export async function listAdapters(): Promise<FoundAdapter[]> {
  if (!isNode) {
    const a = await browserAdapter('auto');
    return a ? [a] : [];
  }
  const out: FoundAdapter[] = [];
  for (const kind of ['hardware', 'llvmpipe', 'swiftshader'] as const) {
    const a = await nodeAdapter(kind);
    if (a) out.push(a);
  }
  return out;
}
