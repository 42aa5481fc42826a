// RoPE row orders of the q/k projections. Meta's checkpoints (and so llama2.c and llama.cpp's GGUF for llama-family
// models) rotate interleaved pairs (x[2i], x[2i+1]); Hugging Face rotates halves (x[i], x[i + hd/2]). HF's converter
// turns the first into the second with
//   w.view(n_heads, hd // 2, 2, dim).transpose(1, 2).reshape(n_heads * hd, dim)
// i.e. within each head, HF row j*hd/2 + i is interleaved row 2i + j (j in {0, 1}). llama.cpp's convert_hf_to_gguf
// applies the inverse. forklm's canonical order is HF's, so interleaved files are permuted once at load.
import { InvalidArgumentError } from '../errors.js';

/** Within each head, moves row `from(i, j)` to row `to(i, j)` for i < headDim/2, j in {0, 1}. */
function moveRows(
  w: Float32Array, // (nHeads * headDim, cols) f32
  nHeads: number,
  headDim: number,
  cols: number,
  toHalf: boolean,
): Float32Array {
  checkSize(w, nHeads, headDim, cols);
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const interleaved = (h * headDim + 2 * i + j) * cols;
        const halves = (h * headDim + j * half + i) * cols;
        const [src, dst] = toHalf ? [interleaved, halves] : [halves, interleaved];
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** Interleaved -> rotate-half: `w` is (nHeads*headDim, cols) row-major (cols = 1 for a bias). Returns a new array. */
export function interleavedToHalf(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  return moveRows(w, nHeads, headDim, cols, true);
}

/** Rotate-half -> interleaved, the inverse of interleavedToHalf (what GGUF and llama2.c writers need). */
export function halfToInterleaved(w: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array {
  return moveRows(w, nHeads, headDim, cols, false);
}

function checkSize(w: Float32Array, nHeads: number, headDim: number, cols: number): void {
  if (headDim % 2 !== 0 || w.length !== nHeads * headDim * cols) {
    throw new InvalidArgumentError(`q/k permutation: ${w.length} values are not (${nHeads} heads x ${headDim} rows, ${cols}) with an even head size`);
  }
}

/**
 * The row order interleavedToHalf produces, as source row indices: row `index[r]` of the interleaved matrix becomes
 * row r (for moving whole stored rows, e.g. rows of quantized blocks, without reading their values).
 */
export function interleavedToHalfIndex(nHeads: number, headDim: number): number[] {
  if (headDim % 2 !== 0) throw new InvalidArgumentError(`q/k permutation: head size ${headDim} is odd`);
  const half = headDim / 2;
  const index = new Array<number>(nHeads * headDim);
  for (let h = 0; h < nHeads; h++) for (let i = 0; i < half; i++) for (let j = 0; j < 2; j++) index[h * headDim + j * half + i] = h * headDim + 2 * i + j;
  return index;
}

/**
 * The pair-adjacent row order of a q or k projection whose RoPE the q|k|v matmul applies in its epilogue
 * (kernels/y_epilogue.ts), as source row indices in Hugging Face's rotate-half order: within each head, row 2i + j
 * is HF row j * rotaryHalf + i for i < rotaryHalf (the pair RoPE rotates together), and rows from 2 rotaryHalf on
 * stay in place (partial rotary). The same order on q and k leaves every q.k unchanged.
 */
export function ropePairIndex(nHeads: number, headDim: number, rotaryHalf: number): number[] {
  if (headDim % 2 !== 0 || 2 * rotaryHalf > headDim) throw new InvalidArgumentError(`q/k pair order: head size ${headDim} with ${rotaryHalf} rotated pairs`);
  const index = Array.from({ length: nHeads * headDim }, (_, r) => r);
  for (let h = 0; h < nHeads; h++) for (let i = 0; i < rotaryHalf; i++) for (let j = 0; j < 2; j++) index[h * headDim + 2 * i + j] = h * headDim + j * rotaryHalf + i;
  return index;
}
