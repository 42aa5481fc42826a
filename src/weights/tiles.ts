// Q5_0 on the GPU as 8-row tiles: a repacking of GGUF's bytes, the same 22 bytes per 32-value block, chosen for the
// decode kernels (issue 12 allows "a repacking of the same size chosen for the kernel").
//
// Why (bench/RESULTS.md "Weights"): a Q5_0 block is 22 bytes (d f16, qh u32 with the 5th bits, qs 16 bytes of
// nibbles), so in a row its fields sit at 2-byte offsets: three 16-byte loads and about 40 selects and shifts to
// realign per block and column, and llvmpipe runs a load whose address differs between SIMD lanes lane by lane. And
// the 5th bits cost as much arithmetic as the nibbles. Here the rows of a tile are read in aligned words, and each
// value's 5 bits sit together, so one shift and mask cut two whole 5-bit values into the 16-bit lanes that the
// 8-bit-activation kernel (qmatmul_q8_t8.wgsl) multiplies, two weights per u32 multiply.
//
// Layout. Tile (T, b) of a chunk, rows 8T..8T+7 of the chunk and their block b, lies at byte (T * blocksPerRow + b) *
// 176: word k (k < 5) of row r at byte 4 (8 k + r) (so 16-byte word 2k + r / 4 holds word k of rows 4 (r / 4) ..+3),
// then the 8 rows' d (f16) at byte 160 + 2 r. A chunk's last tile is padded with zero rows. A row's 5 words hold its
// 32 5-bit values q (x = d (q - 16)) in 16 pairs: pair p = 2 g + e (g < 8, e < 2) is (value 4 g + e, value 4 g + e + 2),
// the two values that one word of quantize_x8.wgsl's A words pairs. Pair p < 15: word floor(p / 3), bits 5 s .. 5 s + 4
// (low value) and 16 + 5 s .. (high value), s = p % 3. Pair 15 (values 29 and 31): bit k of value 29 is bit 15 of word
// k, bit k of value 31 is bit 31 of word k.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import type { StorageType } from './types.js';
import type { WeightTensor } from './gpu_tensor.js';

/** Rows per tile of `type` on the GPU: 8 for Q5_0 (repacked, see above), 1 (rows as stored) for every other type. */
export function tileRows(type: StorageType): number {
  return type === 'Q5_0' ? 8 : 1;
}

const QB = 22; // bytes of a Q5_0 block
const TB = 8 * QB; // bytes of a tile block: 8 rows of one block

/** The 5-bit value v (0..31) of the Q5_0 block at `o` in `row`: its nibble and its qh bit. */
function q5(row: Uint8Array, o: number, v: number): number {
  const nib = v < 16 ? row[o + 6 + v] & 15 : row[o + 6 + v - 16] >> 4;
  const qh = row[o + 2 + (v >> 3)];
  return nib | (((qh >> (v & 7)) & 1) << 4);
}

/** Writes the 5 words of one row's block (GGUF bytes of `row` at `o`) into `out` at tile-block offset `dst`, row `r`. */
function packBlock(row: Uint8Array, o: number, out: DataView, dst: number, r: number): void {
  const words = [0, 0, 0, 0, 0];
  for (let p = 0; p < 15; p++) {
    const g = p >> 1;
    const e = p & 1;
    const s = 5 * (p % 3);
    words[Math.floor(p / 3)] |= (q5(row, o, 4 * g + e) << s) | (q5(row, o, 4 * g + e + 2) << (16 + s));
  }
  const lo = q5(row, o, 29);
  const hi = q5(row, o, 31);
  for (let k = 0; k < 5; k++) {
    words[k] |= (((lo >> k) & 1) << 15) | (((hi >> k) & 1) << 31);
    out.setUint32(dst + 4 * (8 * k + r), words[k] >>> 0, true);
  }
  out.setUint16(dst + 160 + 2 * r, row[o] | (row[o + 1] << 8), true);
}

/**
 * Tiles [t0, t1) of a chunk in the GPU layout; `rowAt(l)` gives the GGUF bytes of the chunk's row l, or null for the
 * padding rows past its end (zeros).
 */
export function packTiles(t0: number, t1: number, rowBytes: number, rowAt: (l: number) => Uint8Array | null): Uint8Array {
  const nb = rowBytes / QB;
  const out = new Uint8Array((t1 - t0) * nb * TB);
  const view = new DataView(out.buffer);
  for (let T = t0; T < t1; T++) {
    for (let r = 0; r < 8; r++) {
      const row = rowAt(8 * T + r);
      if (!row) continue;
      for (let b = 0; b < nb; b++) packBlock(row, b * QB, view, ((T - t0) * nb + b) * TB, r);
    }
  }
  return out;
}

/** The GGUF bytes of row l back from tiled bytes (tests: the repacking loses nothing). */
export function unpackRow(tiled: Uint8Array, rowBytes: number, l: number): Uint8Array {
  const nb = rowBytes / QB;
  const view = new DataView(tiled.buffer, tiled.byteOffset, tiled.byteLength);
  const out = new Uint8Array(rowBytes);
  const T = l >> 3;
  const r = l & 7;
  for (let b = 0; b < nb; b++) {
    const base = (T * nb + b) * TB;
    const w = Array.from({ length: 5 }, (_, k) => view.getUint32(base + 4 * (8 * k + r), true));
    const vals = new Array<number>(32).fill(0);
    for (let p = 0; p < 15; p++) {
      const s = 5 * (p % 3);
      const word = w[Math.floor(p / 3)];
      vals[4 * (p >> 1) + (p & 1)] = (word >>> s) & 31;
      vals[4 * (p >> 1) + (p & 1) + 2] = (word >>> (16 + s)) & 31;
    }
    for (let k = 0; k < 5; k++) {
      vals[29] |= ((w[k] >>> 15) & 1) << k;
      vals[31] |= ((w[k] >>> 31) & 1) << k;
    }
    const o = b * QB;
    const d = view.getUint16(base + 160 + 2 * r, true);
    out[o] = d & 255;
    out[o + 1] = d >> 8;
    let qh = 0;
    for (let v = 0; v < 32; v++) qh |= (vals[v] >> 4) << v;
    new DataView(out.buffer).setUint32(o + 2, qh >>> 0, true);
    for (let j = 0; j < 16; j++) out[o + 6 + j] = (vals[j] & 15) | ((vals[j + 16] & 15) << 4);
  }
  return out;
}

/**
 * The rows of a tile not yet complete, per tensor: a piece that ends inside a tile leaves its rows here until the
 * next piece (pieces go in row order) completes the tile. At most 7 rows.
 */
const pending = new WeakMap<WeightTensor, { row: number; bytes: Uint8Array }>();
/** Tiles repacked per writeBuffer: bounds the host copy (a load keeps host memory near the file's size). */
const TILES_PER_WRITE = 1024;

/** writeWeightRows for a tiled type: rows [rowStart, + bytes / rowBytes), written in order, repacked in whole tiles. */
export function writeTiledRows(gpu: Gpu, t: WeightTensor, rowStart: number, bytes: Uint8Array): void {
  const rb = t.rowBytes;
  const held = pending.get(t);
  // Rows left pending by the previous piece are written only when their tile completes: a piece that does not
  // continue them would drop them silently.
  if (held && rowStart !== held.row + held.bytes.length / rb) {
    const next = held.row + held.bytes.length / rb;
    throw new InvalidArgumentError(`writeWeightRows: ${t.type} rows are stored in tiles of 8; write the rows of a tensor in order (rows ${held.row}..${next - 1} wait for row ${next}, got row ${rowStart}).`);
  }
  const rowEnd = rowStart + bytes.length / rb;
  for (const c of t.chunks) {
    const a = Math.max(rowStart, c.rowStart);
    const b = Math.min(rowEnd, c.rowStart + c.rows);
    if (a >= b) continue;
    const la = a - c.rowStart;
    const lb = b - c.rowStart;
    const from = a - (la % 8);
    // A tile this piece starts inside needs the earlier rows the previous piece left pending.
    if (la % 8 !== 0 && !(held && held.row === from && held.bytes.length === (la % 8) * rb)) {
      throw new InvalidArgumentError(`writeWeightRows: ${t.type} rows are stored in tiles of 8; write the rows of a tensor in order (row ${a} came without rows ${from}..${a - 1}).`);
    }
    const rowAt = (l: number): Uint8Array | null => {
      const g = c.rowStart + l;
      if (l >= c.rows) return null;
      if (g < a) return held!.bytes.subarray((g - held!.row) * rb, (g - held!.row + 1) * rb);
      return bytes.subarray((g - rowStart) * rb, (g - rowStart + 1) * rb);
    };
    const end = lb === c.rows ? Math.ceil(lb / 8) : Math.floor(lb / 8);
    for (let t0 = Math.floor(la / 8); t0 < end; t0 += TILES_PER_WRITE) {
      const t1 = Math.min(end, t0 + TILES_PER_WRITE);
      gpu.device.queue.writeBuffer(c.buffer, t0 * 8 * rb, packTiles(t0, t1, rb, rowAt) as Uint8Array<ArrayBuffer>);
    }
    if (end * 8 < lb) {
      const first = c.rowStart + end * 8;
      const keep = new Uint8Array((b - first) * rb);
      for (let g = first; g < b; g++) keep.set(rowAt(g - c.rowStart)!, (g - first) * rb);
      pending.set(t, { row: first, bytes: keep });
    } else {
      pending.delete(t);
    }
  }
}
