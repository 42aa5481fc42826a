// `forklm doctor` in-process: against the real adapters of this machine (llvmpipe and SwiftShader, as the kernel
// tests require), and against simulated ones for the paths a healthy machine never takes (hanging, missing, too small).
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { runDoctor, formatDoctor, doctorExitCode, DOCTOR_LIMITS, type DoctorDeps, type DoctorReport } from '../../src/cli/doctor.js';
import type { FoundAdapter } from '../../src/gpu/adapters.js';
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';

function capture(env: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env }, out, err };
}

// Which real adapters must be there: the same list the kernel tests use.
const expectedKinds = process.env.FORKLM_TEST_ADAPTERS?.split(',').map((s) => s.trim()) ?? ['llvmpipe', 'swiftshader'];

describe('forklm doctor on this machine', () => {
  it('--json lists the CPU adapters with numeric limits and the adapter forklm would use', async () => {
    const c = capture({});
    const code = await main(['doctor', '--json'], c.io);
    const report = JSON.parse(c.out.join('')) as DoctorReport;
    expect(code, JSON.stringify(report.error)).toBe(0);
    expect(c.err).toEqual([]);
    const kinds = report.adapters.map((a) => a.kind);
    for (const k of expectedKinds) expect(kinds).toContain(k);
    for (const a of report.adapters) {
      for (const name of DOCTOR_LIMITS) {
        expect(typeof a.limits[name], `${a.kind} ${name}`).toBe('number');
        expect(a.limits[name], `${a.kind} ${name}`).toBeGreaterThan(0);
      }
      expect(typeof a.features['shader-f16']).toBe('boolean');
      expect(a.meetsMinimum).toBe(true);
    }
    const llvmpipe = report.adapters.find((a) => a.kind === 'llvmpipe');
    if (llvmpipe) {
      expect(llvmpipe.backend).toBe('opengles');
      // webgpu-on-cpu.md: llvmpipe's storage bindings stop at 128 MiB, and its invocation limit is 1024 when asked.
      expect(llvmpipe.limits.maxStorageBufferBindingSize).toBe(128 * 1024 * 1024);
      expect(llvmpipe.limits.maxComputeInvocationsPerWorkgroup).toBe(1024);
    }
    const swiftshader = report.adapters.find((a) => a.kind === 'swiftshader');
    if (swiftshader) {
      expect(swiftshader).toMatchObject({ backend: 'vulkan', vendor: 'google', architecture: 'swiftshader', fallback: true, software: true });
      expect(swiftshader.features.subgroups).toBe(true);
    }
    expect(report.probes.map((p) => p.kind)).toEqual(['hardware', 'llvmpipe', 'swiftshader']);
    expect(report.adapterEnv).toBeNull();
    // auto prefers hardware, then llvmpipe (the faster CPU adapter), then SwiftShader.
    const auto = kinds.includes('hardware') ? 'hardware' : kinds.includes('llvmpipe') ? 'llvmpipe' : 'swiftshader';
    expect(report.chosen?.kind).toBe(auto);
    expect(report.chosen?.name).toMatch(new RegExp(`^${auto}: `));
  });

  it('follows FORKLM_ADAPTER, prints a table without --json, and exits 2 on a bad value', async () => {
    const kind = expectedKinds.includes('swiftshader') ? 'swiftshader' : expectedKinds[0];
    const c = capture({ FORKLM_ADAPTER: kind });
    expect(await main(['doctor'], c.io)).toBe(0);
    const text = c.out.join('');
    expect(text).toMatch(/^forklm \S+, Node v\d+/);
    expect(text).toMatch(/maxStorageBufferBindingSize +\d+ [KMG]iB/);
    expect(text).toContain(`FORKLM_ADAPTER=${kind}: forklm would use ${kind}: `);
    const bad = capture({ FORKLM_ADAPTER: 'cuda' });
    expect(await main(['doctor', '--json'], bad.io)).toBe(2);
    const report = JSON.parse(bad.out.join('')) as DoctorReport;
    expect(report.error?.code).toBe('INVALID_ARGUMENT');
    expect(report.error?.message).toMatch(/FORKLM_ADAPTER=cuda is not an adapter choice/);
    expect(report.adapters.length).toBeGreaterThan(0); // still lists what there is
  });
});

function fakeAdapter(kind: 'llvmpipe' | 'swiftshader', limits: Partial<Record<string, number>> = {}): FoundAdapter {
  const base: Record<string, number> = {
    maxStorageBufferBindingSize: 2 ** 27,
    maxBufferSize: 2 ** 31,
    maxComputeInvocationsPerWorkgroup: 1024,
    maxComputeWorkgroupStorageSize: 32768,
    maxStorageBuffersPerShaderStage: 16,
    maxComputeWorkgroupsPerDimension: 65535,
  };
  const adapter = {
    info: { vendor: '', architecture: '', device: `${kind}-device`, description: `fake ${kind}`, isFallbackAdapter: false },
    limits: { ...base, ...limits },
    features: new Set<string>(['shader-f16']),
  };
  return { kind, adapter: adapter as unknown as GPUAdapter, isCpu: true };
}

function deps(over: Partial<DoctorDeps>): DoctorDeps {
  return { probe: async () => null, find: async () => null, timeoutMs: 1000, version: '9.9.9', ...over };
}

describe('runDoctor with simulated adapters', () => {
  it('a hanging probe is reported as a timeout and does not stop the others', async () => {
    const t0 = performance.now();
    const report = await runDoctor(
      {},
      deps({
        timeoutMs: 50,
        probe: (kind) => (kind === 'hardware' ? new Promise<never>(() => {}) : Promise.resolve(kind === 'llvmpipe' ? fakeAdapter('llvmpipe') : null)),
        find: async (choice: AdapterChoice) => (choice === 'auto' ? fakeAdapter('llvmpipe') : null),
      }),
    );
    // Two 50 ms timeouts at most (the hanging probe); far below any real hang.
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(report.probes.map((p) => [p.kind, p.status])).toEqual([
      ['hardware', 'timeout'],
      ['llvmpipe', 'found'],
      ['swiftshader', 'absent'],
    ]);
    expect(report.probes[0].message).toBe('no answer within 50 ms');
    expect(report.chosen).toEqual({ kind: 'llvmpipe', name: 'llvmpipe: llvmpipe-device / fake llvmpipe' });
    expect(report.adapters[0].features).toEqual({ 'shader-f16': true, subgroups: false, 'timestamp-query': false });
    expect(doctorExitCode(report)).toBe(0);
    expect(formatDoctor(report)).toContain('Probes: hardware timeout (');
  });

  it('no adapter: the NoAdapterError message says what to install, exit 1', async () => {
    const report = await runDoctor({}, deps({}));
    expect(report.adapters).toEqual([]);
    expect(report.chosen).toBeNull();
    expect(report.error?.code).toBe('NO_ADAPTER');
    expect(report.error?.message).toMatch(/^No WebGPU adapter found\. .*apt-get install -y chromium libvulkan1/);
    expect(doctorExitCode(report)).toBe(1);
    const text = formatDoctor(report);
    expect(text).toContain('Adapters: none found.');
    expect(text).toMatch(/FORKLM_ADAPTER unset \(auto\): forklm has no adapter to use/);
  });

  it('an unavailable FORKLM_ADAPTER choice names the adapters that are there', async () => {
    const report = await runDoctor(
      { FORKLM_ADAPTER: 'swiftshader' },
      deps({ probe: async (k) => (k === 'llvmpipe' ? fakeAdapter('llvmpipe') : null), find: async (c) => (c === 'llvmpipe' ? fakeAdapter('llvmpipe') : null) }),
    );
    expect(report.chosen).toBeNull();
    expect(report.error?.message).toMatch(/^The swiftshader adapter \(FORKLM_ADAPTER=swiftshader\) is not available\. Available here: llvmpipe;/);
    expect(doctorExitCode(report)).toBe(1);
  });

  it('a chosen adapter below forklm\'s minimum limits is reported with what is short, exit 1', async () => {
    const small = fakeAdapter('swiftshader', { maxComputeInvocationsPerWorkgroup: 128 });
    const report = await runDoctor({ FORKLM_ADAPTER: 'swiftshader' }, deps({ probe: async (k) => (k === 'swiftshader' ? small : null), find: async () => small }));
    expect(report.adapters[0].meetsMinimum).toBe(false);
    expect(report.adapters[0].problem).toMatch(/maxComputeInvocationsPerWorkgroup=128, below the 256/);
    expect(report.error?.code).toBe('LIMIT');
    expect(doctorExitCode(report)).toBe(1);
  });

  it('a hanging find() is a NoAdapterError, not a hang', async () => {
    const report = await runDoctor({}, deps({ timeoutMs: 20, find: () => new Promise<never>(() => {}) }));
    expect(report.error?.code).toBe('NO_ADAPTER');
    expect(report.error?.message).toMatch(/did not finish within 60 ms/);
  });

  it('a probe that throws (e.g. the webgpu package cannot load) is reported, not fatal', async () => {
    const report = await runDoctor(
      {},
      deps({
        probe: async () => {
          throw new Error('Cannot find module webgpu');
        },
      }),
    );
    expect(report.probes.every((p) => p.status === 'error' && p.message === 'Cannot find module webgpu')).toBe(true);
    expect(report.error?.code).toBe('NO_ADAPTER');
  });
});
