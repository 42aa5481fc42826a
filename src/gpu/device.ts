// One way to get a GPU device, in the browser and in Node, with the limits forklm needs and device loss turned
// into a typed error.
import { DeviceLostError, InvalidArgumentError, NoAdapterError } from '../errors.js';
import { parseAdapterChoice, type AdapterChoice, type AdapterKind } from './adapter_choice.js';
import { anonymousAdapter, findAdapter, isNode } from './adapters.js';
import { requiredLimits } from './limits.js';
import { checkRegisterBlocks, resolveRegisterBlocks, type RegisterBlocks, type RegisterBlocksChoice } from './register_blocks.js';
import { PipelineCache } from './pipelines.js';

export interface GpuOptions {
  /** Which adapter to use; defaults to the FORKLM_ADAPTER environment variable, then `auto`. */
  adapter?: AdapterChoice;
  /**
   * Ask for `timestamp-query` when the adapter has it (instrumentation: bench/idle.ts reads each step's GPU start and
   * end from it). Default false. `Gpu.timestamps` says whether the device got it.
   */
  timestamps?: boolean;
  /**
   * Node on llvmpipe only: the worker threads llvmpipe runs kernels on (Mesa's LP_NUM_THREADS). 0 runs every kernel
   * on the thread that submits it, with no hand-off to workers (each hand-off costs 20-130 us here, more than a small
   * model's kernel). The process's first llvmpipe adapter fixes it: later values change nothing (Mesa reads it at
   * each new llvmpipe screen, so forklm sets the first count again around every llvmpipe adapter it makes), and
   * LP_NUM_THREADS set in the environment wins. forklm sets it only while adapters are made, so child processes do
   * not inherit it. Default here: Mesa's (one worker per core); Engine.fromWeights and loadEngine, when they make the
   * GPU, pick it from the model's size instead (gpu/cpu_threads.ts: 0 for stories260K-sized models).
   */
  cpuThreads?: number;
  /**
   * Node only, instrumentation, unsafe: extra flags for Dawn's instance (the `webgpu` package's create() flags), e.g.
   * `['enable-dawn-features=disable_robustness']`, which turns off bounds checks on every buffer access (bench/gap.ts
   * measures Dawn toggles with it). Not for running models. Ignored in a page, where Chromium's command line sets
   * Dawn's toggles.
   */
  dawnFlags?: string[];
  /**
   * How the register-blocked kernels of CPU adapters hold their blocks (gpu/register_blocks.ts): `loops`, `unrolled`
   * (written out, for Chromium's GL route, where ANGLE's index clamps make the loop form 8x slower) or `auto` (the
   * default: `unrolled` on a compatibility-only CPU adapter in a browser, `loops` elsewhere). `Gpu.registerBlocks`
   * says what the device got.
   */
  registerBlocks?: RegisterBlocksChoice;
}

export interface Gpu {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly kind: AdapterKind;
  /** A software adapter (SwiftShader, llvmpipe): kernels pick their CPU-friendly variants. */
  readonly isCpu: boolean;
  /**
   * The adapter names neither vendor, architecture nor description (gpu/adapters.ts anonymousAdapter): in a page,
   * Chromium's llvmpipe route without developer features; it may be a CPU adapter that isCpu cannot see.
   */
  readonly anonymous: boolean;
  /** A human-readable adapter name for logs and benchmark records. */
  readonly name: string;
  readonly limits: GPUSupportedLimits;
  readonly pipelines: PipelineCache;
  /** The device has `timestamp-query` (GpuOptions.timestamps on an adapter that offers it). */
  readonly timestamps: boolean;
  /** The form of the register-blocked kernels on this device (GpuOptions.registerBlocks, resolved). */
  readonly registerBlocks: RegisterBlocks;
  /** llvmpipe in Node: the LP_NUM_THREADS its process runs with (GpuOptions.cpuThreads); null: Mesa's default or another adapter. */
  readonly cpuThreads: number | null;
  /** Set once the device is lost; every later GPU call through forklm throws it. */
  lostError: DeviceLostError | null;
  /** Throws the DeviceLostError if the device was lost. */
  checkLost(): void;
  destroy(): void;
}

/** What to install when Node finds no adapter (also printed by `forklm doctor`). */
export const NO_ADAPTER_HELP =
  'On Debian/Ubuntu install the software adapters with ' +
  '`apt-get install -y chromium libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri` (or run `bash scripts/setup.sh`), ' +
  'or a GPU driver with Vulkan support.';
const NO_ADAPTER_BROWSER =
  'This browser offers no WebGPU adapter. Use a recent Chrome or Edge (or Firefox/Safari with WebGPU enabled); ' +
  'on Linux, start Chromium with --enable-unsafe-webgpu.';

function adapterName(kind: AdapterKind, adapter: GPUAdapter): string {
  const i = adapter.info;
  const parts = [i.vendor, i.architecture, i.description].filter((s) => s && s.trim()).map((s) => s.trim());
  return `${kind}: ${parts.join(' / ') || 'unknown adapter'}`;
}

export async function createGpu(options: GpuOptions = {}): Promise<Gpu> {
  const choice =
    options.adapter ?? (isNode ? parseAdapterChoice(process.env.FORKLM_ADAPTER) : ('auto' as AdapterChoice));
  const threads = options.cpuThreads;
  if (threads !== undefined && (!Number.isSafeInteger(threads) || threads < 0))
    throw new InvalidArgumentError(`cpuThreads=${threads}: give an integer >= 0 (0 runs llvmpipe's kernels on the submitting thread).`);
  const blocks = checkRegisterBlocks(options.registerBlocks);
  const found = await findAdapter(choice, { cpuThreads: threads, dawnFlags: options.dawnFlags });
  if (!found) {
    const what = choice === 'auto' ? 'No WebGPU adapter found.' : `The ${choice} adapter is not available.`;
    throw new NoAdapterError(isNode ? `${what} ${NO_ADAPTER_HELP} \`forklm doctor\` lists what it can see.` : NO_ADAPTER_BROWSER);
  }
  const { adapter, kind, isCpu, cpuThreads } = found;
  const timestamps = options.timestamps === true && adapter.features.has('timestamp-query');
  const device = await adapter.requestDevice({
    requiredLimits: requiredLimits(adapter),
    ...(timestamps ? { requiredFeatures: ['timestamp-query' as GPUFeatureName] } : {}),
  });
  const gpu: Gpu = {
    device,
    adapter,
    kind,
    isCpu,
    anonymous: anonymousAdapter(adapter),
    name: adapterName(kind, adapter),
    limits: device.limits,
    pipelines: new PipelineCache(device),
    timestamps,
    registerBlocks: resolveRegisterBlocks(blocks, {
      browser: !isNode,
      isCpu,
      core: adapter.features.has('core-features-and-limits' as GPUFeatureName),
    }),
    cpuThreads: cpuThreads ?? null,
    lostError: null,
    checkLost() {
      if (gpu.lostError) throw gpu.lostError;
      gpu.pipelines.checkFailed();
    },
    destroy() {
      device.destroy();
    },
  };
  // Keep Dawn's instance reachable as long as the device (Node): collecting it would tear the device down.
  (gpu as unknown as { instance?: unknown }).instance = found.instance;
  void device.lost.then((info) => {
    gpu.lostError = new DeviceLostError(
      info.reason,
      info.reason === 'destroyed'
        ? 'The GPU device was destroyed; create a new engine to continue.'
        : `The GPU device was lost (${info.message || info.reason}). Create a new engine; if it keeps happening, ` +
            'lower max_paths or the model size, or try another adapter (FORKLM_ADAPTER=llvmpipe|swiftshader).',
    );
  });
  return gpu;
}
