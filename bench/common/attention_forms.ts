// The per-head paged attention's forms against each other on one GPU, Node and page alike (no Node API): loops
// (private arrays) or written out (kernels/paged_attention_written_out.ts), one or two rows per invocation, GQA heads
// per invocation. The step it times is the peers job's wide one: 16 forked paths at position 287 of their context, a
// 256-token prompt's 16 pages shared by all and 2 pages of each path's own (pages of 16 keys, ids as a scheduler
// leaves them), one dispatch per layer, `layers` dispatches per submit. Forms alternate within each round, so all see
// the same load; per form the median and fastest ms per dispatch over the rounds (each round: submit, wait for the GPU).
import type { Gpu } from '../../src/gpu/device.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { PagedAttention } from '../../src/kernels/paged_attention.js';
import { median, round4 } from './timing.js';

export interface AttentionShape {
  name: string;
  nHeads: number;
  kvHeads: number;
  headDim: number;
}

export interface AttentionForm {
  registerBlocks: RegisterBlocks;
  rowsPerInvocation: number;
  headsPerInvocation?: number;
}

/** stories260K (the peers job's model) and the SmolLM2-135M shape; the forms each is timed in. */
export const ATTENTION_CASES: { shape: AttentionShape; forms: AttentionForm[] }[] = [
  {
    shape: { name: 'stories260K', nHeads: 8, kvHeads: 4, headDim: 8 },
    forms: [
      { registerBlocks: 'loops', rowsPerInvocation: 1 },
      { registerBlocks: 'unrolled', rowsPerInvocation: 1 },
      { registerBlocks: 'loops', rowsPerInvocation: 2 },
      { registerBlocks: 'unrolled', rowsPerInvocation: 2 },
    ],
  },
  {
    shape: { name: 'SmolLM2-135M', nHeads: 9, kvHeads: 3, headDim: 64 },
    forms: [
      { registerBlocks: 'loops', rowsPerInvocation: 1 },
      { registerBlocks: 'unrolled', rowsPerInvocation: 1 },
    ],
  },
];

const PAGE = 16;
const PATHS = 16;
const PROMPT = 256;
const OWN_KEYS = 32;

export async function attentionForms(gpu: Gpu, o: { rounds: number; layers: number }): Promise<object[]> {
  const out: object[] = [];
  const d = gpu.device;
  for (const { shape, forms } of ATTENTION_CASES) {
    const qStride = (shape.nHeads + 2 * shape.kvHeads) * shape.headDim;
    const shared = PROMPT / PAGE;
    const own = Math.ceil(OWN_KEYS / PAGE);
    const maxPages = shared + own;
    const pages = shared + PATHS * own;
    // (PATHS, maxPages) u32: the prompt's pages first in every table, then the path's own.
    const pageTable = Uint32Array.from({ length: PATHS * maxPages }, (_, i) => {
      const [r, p] = [Math.floor(i / maxPages), i % maxPages];
      return p < shared ? p : shared + r * own + (p - shared);
    });
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1;
    const b = {
      q: createStorageFrom(d, Float32Array.from({ length: PATHS * qStride }, rand), 'q (rows, qStride) f32'),
      kv: createStorageFrom(d, Float32Array.from({ length: pages * 2 * shape.kvHeads * PAGE * shape.headDim }, rand), 'kv pool f32'),
      rowPath: createStorageFrom(d, Uint32Array.from({ length: PATHS }, (_, i) => i), 'rowPath (rows) u32'),
      positions: createStorageFrom(d, new Uint32Array(PATHS).fill(PROMPT + OWN_KEYS - 1), 'positions (rows) u32'),
      pageTable: createStorageFrom(d, pageTable, 'pageTable (paths, maxPages) u32'),
      out: createStorage(d, PATHS * shape.nHeads * shape.headDim * 4, 'out (rows, Hq * hd) f32'),
    };
    const ops = forms.map((f) => {
      const op = new PagedAttention(gpu, { ...shape, pageSize: PAGE, qStride, variant: 'per-head', ...f });
      return { f, op, k: op.bind(b) };
    });
    const ms: number[][] = ops.map(() => []);
    // Round 0 compiles and warms up (llvmpipe in a page runs its first dispatches several times slower): untimed.
    for (let round = 0; round <= o.rounds; round++) {
      for (let i = 0; i < ops.length; i++) {
        const t0 = performance.now();
        const enc = d.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (let l = 0; l < o.layers; l++) ops[i].k.encode(pass, { rows: PATHS, maxPages });
        pass.end();
        d.queue.submit([enc.finish()]);
        await d.queue.onSubmittedWorkDone();
        if (round > 0) ms[i].push((performance.now() - t0) / o.layers);
      }
    }
    ops.forEach(({ f, op, k }, i) => {
      out.push({
        shape: shape.name,
        ...f,
        headsPerInvocation: op.headsPerInvocation,
        writtenOut: op.writtenOut,
        rowsTaken: op.rowsFor(PATHS),
        median_ms: round4(median(ms[i])),
        min_ms: round4(Math.min(...ms[i])),
      });
      k.destroy();
      op.destroy();
    });
    for (const buf of Object.values(b)) buf.destroy();
  }
  return out;
}
