// `forklm doctor`: every WebGPU adapter forklm can get on this machine, what it offers that matters to forklm,
// and which one forklm would use. The first thing to run when something does not work.
import { ForkLMError, LimitError, NoAdapterError } from '../errors.js';
import { parseAdapterChoice, type AdapterChoice, type AdapterKind } from '../gpu/adapter_choice.js';
import { findAdapter, SWIFTSHADER_ICD, type FoundAdapter } from '../gpu/adapters.js';
import { requiredLimits } from '../gpu/limits.js';
import { NO_ADAPTER_HELP } from '../gpu/device.js';
import { defineCommand, type CliContext } from './args.js';
import { formatBytes, table, yesNo } from './format.js';

/**
 * The kinds listAdapters() probes in Node, in findAdapter's `auto` order. Doctor probes them one by one through
 * findAdapter(kind) (the same code listAdapters runs) so that each probe gets its own timeout.
 */
export const PROBED_KINDS = ['hardware', 'llvmpipe', 'swiftshader'] as const;
export type ProbedKind = (typeof PROBED_KINDS)[number];

/** Limits that decide what forklm can run: buffer sizes (model size per binding), workgroup shapes, bindings. */
export const DOCTOR_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;
const BYTE_LIMITS = new Set<string>(['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize']);
/** Features forklm uses when present: f16 weights in shaders, subgroup reductions, GPU timing in benchmarks. */
export const DOCTOR_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export interface AdapterReport {
  kind: AdapterKind;
  /** Dawn backend: the llvmpipe route is OpenGL ES by construction; create([]) gives the platform's native API. */
  backend: 'opengles' | 'vulkan' | 'metal' | 'd3d12' | 'browser';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The adapter's own isFallbackAdapter (SwiftShader says yes; llvmpipe through GL says no). */
  fallback: boolean;
  /** forklm treats it as a CPU (kernels pick their one-thread-per-output variants). */
  software: boolean;
  limits: Record<(typeof DOCTOR_LIMITS)[number], number>;
  features: Record<(typeof DOCTOR_FEATURES)[number], boolean>;
  /** Whether the adapter offers the minimum limits forklm needs (src/gpu/limits.ts); `problem` says what is short. */
  meetsMinimum: boolean;
  problem?: string;
}

export interface ProbeReport {
  kind: ProbedKind;
  status: 'found' | 'absent' | 'timeout' | 'error';
  ms: number;
  message?: string;
}

export interface DoctorReport {
  forklm: string;
  node: string;
  platform: string;
  /** FORKLM_ADAPTER as set (null when unset, which means `auto`). */
  adapterEnv: string | null;
  probes: ProbeReport[];
  adapters: AdapterReport[];
  /** The adapter forklm would use with FORKLM_ADAPTER, or null (then `error` says why). */
  chosen: { kind: AdapterKind; name: string } | null;
  error?: { code: string; message: string };
}

/** What doctor calls to reach the GPU; replaced in tests to simulate missing or hanging adapters. */
export interface DoctorDeps {
  probe(kind: ProbedKind): Promise<FoundAdapter | null>;
  find(choice: AdapterChoice): Promise<FoundAdapter | null>;
  /** Per probe; a probe that takes longer is reported as `timeout` and doctor goes on without it. */
  timeoutMs: number;
  version: string;
}


class ProbeTimeout extends Error {}

/** `promise`, or a ProbeTimeout after `ms`. The timer is cleared either way so it never keeps Node alive. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout()), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function backendOf(kind: AdapterKind): AdapterReport['backend'] {
  if (kind === 'llvmpipe') return 'opengles';
  if (kind === 'browser') return 'browser';
  if (kind === 'swiftshader') return 'vulkan';
  // Dawn's default instance picks the platform's native API.
  return process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
}

export function describeAdapter(found: FoundAdapter): AdapterReport {
  const { adapter } = found;
  const info = adapter.info as Partial<GPUAdapterInfo> | undefined;
  const limits = {} as AdapterReport['limits'];
  for (const name of DOCTOR_LIMITS) limits[name] = Number((adapter.limits as unknown as Record<string, number>)[name] ?? 0);
  const features = {} as AdapterReport['features'];
  for (const name of DOCTOR_FEATURES) features[name] = adapter.features.has(name);
  let problem: string | undefined;
  try {
    requiredLimits(adapter);
  } catch (e) {
    if (!(e instanceof LimitError)) throw e;
    problem = e.message;
  }
  const fallback =
    info?.isFallbackAdapter === true || (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return {
    kind: found.kind,
    backend: backendOf(found.kind),
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    fallback,
    software: found.isCpu,
    limits,
    features,
    meetsMinimum: problem === undefined,
    ...(problem === undefined ? {} : { problem }),
  };
}

function adapterName(r: AdapterReport): string {
  // llvmpipe through GL reports no vendor or architecture; its device string is then the informative part.
  const who = r.vendor.trim() || r.architecture.trim() ? [r.vendor, r.architecture] : [r.device];
  const parts = [...who, r.description].map((s) => s.trim()).filter((s) => s !== '');
  return `${r.kind}: ${parts.join(' / ') || 'unknown adapter'}`;
}

/** Probes every adapter (each under its own timeout), then asks findAdapter which one FORKLM_ADAPTER selects. */
export async function runDoctor(env: Record<string, string | undefined>, deps: DoctorDeps): Promise<DoctorReport> {
  const report: DoctorReport = {
    forklm: deps.version,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    adapterEnv: env.FORKLM_ADAPTER ?? null,
    probes: [],
    adapters: [],
    chosen: null,
  };
  for (const kind of PROBED_KINDS) {
    const t0 = performance.now();
    const ms = (): number => Math.round(performance.now() - t0);
    try {
      const found = await withTimeout(deps.probe(kind), deps.timeoutMs);
      report.probes.push({ kind, status: found ? 'found' : 'absent', ms: ms() });
      if (found) report.adapters.push(describeAdapter(found));
    } catch (e) {
      const timedOut = e instanceof ProbeTimeout;
      report.probes.push({
        kind,
        status: timedOut ? 'timeout' : 'error',
        ms: ms(),
        message: timedOut ? `no answer within ${deps.timeoutMs} ms` : e instanceof Error ? e.message : String(e),
      });
    }
  }

  let choice: AdapterChoice;
  try {
    choice = parseAdapterChoice(env.FORKLM_ADAPTER);
  } catch (e) {
    report.error = errorOf(e);
    return report;
  }
  let chosen: FoundAdapter | null = null;
  const findMs = deps.timeoutMs * (choice === 'auto' ? PROBED_KINDS.length : 1);
  try {
    chosen = await withTimeout(deps.find(choice), findMs);
  } catch (e) {
    report.error = errorOf(
      e instanceof ProbeTimeout
        ? new NoAdapterError(`Finding the ${choice} adapter did not finish within ${findMs} ms; its driver hangs. Try another FORKLM_ADAPTER.`)
        : e,
    );
    return report;
  }
  if (!chosen) {
    const what = choice === 'auto' ? 'No WebGPU adapter found.' : `The ${choice} adapter (FORKLM_ADAPTER=${env.FORKLM_ADAPTER}) is not available.`;
    const here = report.adapters.map((a) => a.kind);
    const help = here.length
      ? `Available here: ${here.join(', ')}; unset FORKLM_ADAPTER (auto) or set it to one of them.` +
        (choice === 'hardware' ? ' For a GPU, install its driver with Vulkan support.' : ` ${NO_ADAPTER_HELP}`)
      : NO_ADAPTER_HELP;
    report.error = errorOf(new NoAdapterError(`${what} ${help}`));
    return report;
  }
  const described = describeAdapter(chosen);
  report.chosen = { kind: described.kind, name: adapterName(described) };
  if (described.problem) report.error = errorOf(new LimitError(described.problem));
  return report;
}

function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof ForkLMError) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** 0 when forklm has an adapter it can run on, 2 for a bad FORKLM_ADAPTER value, else 1. */
export function doctorExitCode(report: DoctorReport): number {
  if (!report.error) return 0;
  return report.error.code === 'INVALID_ARGUMENT' ? 2 : 1;
}

export function formatDoctor(report: DoctorReport): string {
  let out = `forklm ${report.forklm}, Node ${report.node}, ${report.platform}\n\n`;
  const as = report.adapters;
  if (as.length === 0) {
    out += 'Adapters: none found.\n';
  } else {
    const dash = (s: string): string => s.trim() || '-';
    const rows: string[][] = [
      [`Adapters (${as.length})`, ...as.map((a) => a.kind)],
      ['backend', ...as.map((a) => a.backend)],
      ['vendor', ...as.map((a) => dash(a.vendor))],
      ['architecture', ...as.map((a) => dash(a.architecture))],
      ['device', ...as.map((a) => dash(a.device))],
      ['description', ...as.map((a) => dash(a.description))],
      ['fallback adapter', ...as.map((a) => yesNo(a.fallback))],
      ['software (CPU)', ...as.map((a) => yesNo(a.software))],
      ...DOCTOR_LIMITS.map((n) => [n, ...as.map((a) => (BYTE_LIMITS.has(n) ? formatBytes(a.limits[n]) : String(a.limits[n])))]),
      ...DOCTOR_FEATURES.map((f) => [f, ...as.map((a) => yesNo(a.features[f]))]),
      ["meets forklm's minimum", ...as.map((a) => yesNo(a.meetsMinimum))],
    ];
    out += table(rows);
  }
  const probes = report.probes.map((p) => `${p.kind} ${p.status === 'found' ? 'found' : p.status === 'absent' ? 'none' : p.status} (${p.ms} ms)`);
  out += `\nProbes: ${probes.join(', ')}\n`;
  for (const p of report.probes) if (p.message) out += `  ${p.kind}: ${p.message}\n`;
  const setting = report.adapterEnv === null || report.adapterEnv === '' ? 'FORKLM_ADAPTER unset (auto)' : `FORKLM_ADAPTER=${report.adapterEnv}`;
  out += report.chosen ? `${setting}: forklm would use ${report.chosen.name}\n` : `${setting}: forklm has no adapter to use\n`;
  return out;
}

export const doctorCommand = defineCommand({
  summary: 'List the WebGPU adapters forklm can use and which one it would pick',
  details:
    'Probes the hardware adapter, llvmpipe (Dawn OpenGL ES, compatibility mode) and SwiftShader (Dawn Vulkan), each\n' +
    'under a timeout, and prints their limits and features. FORKLM_ADAPTER=auto|hardware|llvmpipe|swiftshader picks\n' +
    `the adapter forklm uses. SwiftShader comes from Debian's chromium package (${SWIFTSHADER_ICD}).\n` +
    'Exit code: 0 when forklm has an adapter to run on, 1 when it has none, 2 when FORKLM_ADAPTER is invalid.',
  flags: {
    json: { type: 'boolean', description: 'Print the report as JSON' },
    timeout: { type: 'number', description: 'Seconds to wait for each adapter probe', default: 15, min: 0.001, placeholder: 'seconds' },
  },
  async run({ flags }, io: CliContext) {
    const report = await runDoctor(io.env, {
      probe: (kind) => findAdapter(kind),
      find: (choice) => findAdapter(choice),
      timeoutMs: flags.timeout * 1000,
      version: io.version,
    });
    if (flags.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
    else {
      io.stdout(formatDoctor(report));
      if (report.error) io.stderr(`forklm: ${report.error.message}\n`);
    }
    return doctorExitCode(report);
  },
});
