// The GPUs each kernel test runs on: both CPU adapters in Node (llvmpipe and SwiftShader), the page's adapter in
// Chromium (SwiftShader; llvmpipe in the browser-gl project, which runs the matmul tests on Chromium's GL route). A missing adapter fails the run (CI installs both) unless FORKLM_TEST_ADAPTERS narrows the list.
import { createGpu, type Gpu } from '../../src/gpu/device.js';
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';
import { isNode } from '../../src/gpu/adapters.js';

/** Set by vitest.config.ts for the browser project on Chromium's GL route (llvmpipe); undefined elsewhere. */
declare const __FORKLM_TEST_ADAPTER__: AdapterChoice | undefined;

export function testAdapterChoices(): AdapterChoice[] {
  if (!isNode) return [typeof __FORKLM_TEST_ADAPTER__ === 'string' ? __FORKLM_TEST_ADAPTER__ : 'auto'];
  const env = process.env.FORKLM_TEST_ADAPTERS;
  return env ? (env.split(',').map((s) => s.trim()) as AdapterChoice[]) : ['llvmpipe', 'swiftshader'];
}

const cache = new Map<AdapterChoice, Promise<Gpu>>();
/** One device per adapter per test file, shared by its tests. */
export function gpuFor(choice: AdapterChoice): Promise<Gpu> {
  let p = cache.get(choice);
  if (!p) {
    p = createGpu({ adapter: choice });
    cache.set(choice, p);
  }
  return p;
}
