// The GPUs each kernel test runs on: both CPU adapters in Node (llvmpipe and SwiftShader), the page's adapter in
// Chromium. A missing adapter fails the run (CI installs both) unless FORKLM_TEST_ADAPTERS narrows the list.
import { createGpu, type Gpu } from '../../src/gpu/device.js';
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';
import { isNode } from '../../src/gpu/adapters.js';

export function testAdapterChoices(): AdapterChoice[] {
  if (!isNode) return ['auto'];
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
