// A shader that does not compile becomes a typed ShaderError at the next GPU call, instead of a console warning and
// silently wrong results.
import { describe, expect, it } from 'vitest';
import { ShaderError } from '../../src/errors.js';
import { createGpu } from '../../src/gpu/device.js';
import { testAdapterChoices } from './adapters.js';

describe.each(testAdapterChoices())('pipeline errors on %s', (choice) => {
  it('reports a broken shader as a ShaderError', async () => {
    const gpu = await createGpu({ adapter: choice === 'auto' ? undefined : choice });
    try {
      gpu.checkLost(); // nothing failed yet
      gpu.pipelines.get({ op: 'broken', variant: 'test', constants: {} }, () => '@compute @workgroup_size(1) fn main() { let x: u32 = undefined_name; }');
      await gpu.device.queue.onSubmittedWorkDone();
      // The device reports the error asynchronously (its error scope's promise): wait for that report, up to 5 s, not a
      // fixed 50 ms that a loaded machine may outlast. A shader error never reported still fails below.
      for (let t = 0; t < 250 && gpu.pipelines.failures.length === 0; t++) await new Promise((r) => setTimeout(r, 20));
      expect(() => gpu.checkLost()).toThrow(ShaderError);
      expect(() => gpu.checkLost()).toThrow(/broken\/test/);
    } finally {
      gpu.destroy();
    }
  });
});
