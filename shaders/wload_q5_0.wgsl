// Q5_0: 32 values of 5 bits q and an f16 d per block, x = d (q - 16), held in tiles of 8 rows (src/weights/tiles.ts
// gives the layout: per tile block, 5 words of packed 5-bit pairs per row, plane by plane, then the 8 rows' d). The
// byte offset o = row * rowBytes + block * BLOCK_BYTES that the bodies pass, as for the row-major types, is mapped to
// the tile (q5_at); the 8-bit body reads the tiles directly (qmatmul_q8_t8.wgsl).
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;
const SUB: u32 = 32u;
const M5: u32 = 0x001f001fu;

/** The tile offsets (bytes) of the block at row-layout offset o: x = its row's word 0 (word k at x + 32 k), y = its d. */
fn q5_at(o: u32) -> vec2<u32> {
  let row = o / params.rowBytes;
  let b = (o - row * params.rowBytes) / BLOCK_BYTES;
  let base = ((row >> 3u) * (params.rowBytes / BLOCK_BYTES) + b) * 176u;
  let r = row & 7u;
  return vec2<u32>(base + 4u * r, base + 160u + 2u * r);
}

/** Pair 15 (values 29, 31) from the spare bits 15 and 31 of the row's five words, in 16-bit lanes like the others. */
fn q5_pair15(w0: u32, w1: u32, w2: u32, w3: u32, w4: u32) -> u32 {
  let h = 0x00010001u;
  return ((w0 >> 15u) & h) | ((w1 >> 14u) & (h << 1u)) | ((w2 >> 13u) & (h << 2u)) | ((w3 >> 12u) & (h << 3u)) | ((w4 >> 11u) & (h << 4u));
}

/** Values 4 g .. 4 g + 3 from pairs 2 g (pa) and 2 g + 1 (pb), each in 16-bit lanes (low value, high value). */
fn q5_group(pa: u32, pb: u32) -> vec4<f32> {
  return vec4<f32>(vec4<u32>(pa & 0xffffu, pb & 0xffffu, pa >> 16u, pb >> 16u));
}

fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(q5_at(o), 0u, 0u); }

/** The 16 pairs of a row's block from its five words (pair p < 15: word p / 3, shift 5 (p % 3)). */
fn q5_pairs(at: u32) -> array<u32, 16> {
  let w0 = wd(at);
  let w1 = wd(at + 32u);
  let w2 = wd(at + 64u);
  let w3 = wd(at + 96u);
  let w4 = wd(at + 128u);
  return array<u32, 16>(w0 & M5, (w0 >> 5u) & M5, (w0 >> 10u) & M5, w1 & M5, (w1 >> 5u) & M5, (w1 >> 10u) & M5,
    w2 & M5, (w2 >> 5u) & M5, (w2 >> 10u) & M5, w3 & M5, (w3 >> 5u) & M5, (w3 >> 10u) & M5,
    w4 & M5, (w4 >> 5u) & M5, (w4 >> 10u) & M5, q5_pair15(w0, w1, w2, w3, w4));
}

fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let p = q5_pairs(h.x);
  var r = Sub();
  for (var g = 0u; g < 8u; g++) { r.q[g] = q5_group(p[2u * g], p[2u * g + 1u]) - 16.0; }
  r.lo = half_at(h.y);
  r.hi = r.lo;
  return r;
}
