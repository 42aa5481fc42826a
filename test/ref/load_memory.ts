// Run in a child process by test/model/load_memory.test.ts:
//   node --expose-gc --import tsx test/ref/load_memory.ts <model path> [weights mode]
// Loads the model onto llvmpipe through loadEngine and prints one JSON line: the host memory the loader holds, sampled
// at every progress event (each chunk read, each tensor written to the GPU) and at the end.
//
// What is measured: V8's heap plus ArrayBuffer memory (process.memoryUsage().heapUsed + arrayBuffers): every byte the
// loader reads or builds (the file, a tensor's rearranged rows, a widened copy) lives there. Not RSS: on a CPU
// adapter the GPU's buffers are host memory as well, so RSS would count the uploaded weights a second time, by design
// of the adapter rather than of the loader. The GPU device is created before the baseline, so its own start-up
// allocations are not counted. `live` samples follow a full GC (what the loader keeps reachable); `raw` samples do
// not (garbage not yet collected counts too: an upper bound on what the process asked for).
import { createGpu } from '../../src/gpu/device.js';
import { loadEngine } from '../../src/engine_load.js';
import type { WeightsMode } from '../../src/weights/stored_matrix.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const [path, mode = 'as-stored'] = process.argv.slice(2);
const gpu = await createGpu({ adapter: 'llvmpipe' });
gc();
const base = used();
let raw = base;
let live = base;
let events = 0;
let uploads = 0;
let uploadLive = base; // the largest live sample at an upload event (engine buffers and pipelines come after)
const sample = () => {
  raw = Math.max(raw, used());
  // Twice: V8 releases an ArrayBuffer's memory after the collection that finds it dead, so one GC may still count it.
  gc();
  gc();
  const now = used();
  live = Math.max(live, now);
  return now;
};
const engine = await loadEngine(path, {
  gpu,
  weights: mode as WeightsMode,
  kvPages: 4,
  onProgress: (p) => {
    events++;
    const now = sample();
    if (process.env.MEMDEBUG) process.stderr.write(`${p.phase} ${p.file} ${((now - base) / 1e6).toFixed(2)}\n`);
    if (p.phase === 'upload') (uploads++, (uploadLive = Math.max(uploadLive, now)));
  },
});
sample();
const gpuBytes = engine.model.weights.bytes;
engine.destroy();
gpu.destroy();
process.stdout.write(JSON.stringify({ base, rawPeak: raw - base, livePeak: live - base, uploadLivePeak: uploadLive - base, events, uploads, gpuBytes }) + '\n');
