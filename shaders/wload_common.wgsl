// What every weight-loading snippet (wload_<type>.wgsl) shares: the Sub struct it returns and helpers that read GGUF
// blocks from this chunk's bytes, bound twice by the kernel body: `w4` (vec4<u32>: 16-byte loads, for fields the type
// keeps 16-byte aligned) and `w1` (u32 words). Every field of every block lies at an even byte offset (all block sizes
// are even), so a 32-bit field is at worst 2 bytes off a word; each chunk ends with spare words, so reading one word
// past a field never leaves the buffer.
//
// A snippet defines QK (values per block), BLOCK_BYTES, SUB (values per sub-block: QK % SUB == 0, SUB % 8 == 0 or
// SUB == 4), blk_head (per-block fields read once, packed in a vec4<u32>) and sub_load, which returns sub-block s as
// small numbers q and the affine map back to weights: weight v = scale * q[v] + off, with (scale, off) = (lo, offLo)
// for the first half of the sub-block and (hi, offHi) for the second (K-quants scale each 32 or 16 values on their own).
// Kernels then compute scale * (q . x) + off * sum(x) per half: the dot product runs on the small numbers, and the
// scales are applied once per half (as llama.cpp's vec_dot_* do).
const SUB4: u32 = SUB / 4u;   // vec4s per sub-block
const HALF4: u32 = SUB4 / 2u; // vec4s in the first half (0 when SUB == 4: one half, the second)

struct Sub {
  q: array<vec4<f32>, SUB4>,
  lo: f32,
  hi: f32,
  offLo: f32,
  offHi: f32,
}

/** The word at byte offset o, o % 4 == 0. */
fn wd(o: u32) -> u32 {
  return w1[o >> 2u];
}

/** The 32 bits at byte offset o, o % 2 == 0: one word, or the halves of two neighbours. */
fn wd2(o: u32) -> u32 {
  let i = o >> 2u;
  let a = w1[i];
  let b = w1[i + 1u];
  return select(a, (a >> 16u) | (b << 16u), (o & 2u) != 0u);
}

/** 16 bytes at an even offset o as 4 words (5 loads). */
fn ld4(o: u32) -> array<u32, 4> {
  let i = o >> 2u;
  var r: array<u32, 4>;
  if ((o & 2u) == 0u) {
    for (var k = 0u; k < 4u; k++) { r[k] = w1[i + k]; }
  } else {
    var a = w1[i];
    for (var k = 0u; k < 4u; k++) {
      let b = w1[i + k + 1u];
      r[k] = (a >> 16u) | (b << 16u);
      a = b;
    }
  }
  return r;
}

/** 32 bytes at an even offset o as 8 words (9 loads). */
fn ld8(o: u32) -> array<u32, 8> {
  let i = o >> 2u;
  var r: array<u32, 8>;
  if ((o & 2u) == 0u) {
    for (var k = 0u; k < 8u; k++) { r[k] = w1[i + k]; }
  } else {
    var a = w1[i];
    for (var k = 0u; k < 8u; k++) {
      let b = w1[i + k + 1u];
      r[k] = (a >> 16u) | (b << 16u);
      a = b;
    }
  }
  return r;
}

/** The f16 at byte offset o (o % 2 == 0), widened: unpack2x16float is core WGSL, no shader-f16 needed. */
fn half_at(o: u32) -> f32 {
  return unpack2x16float(w1[o >> 2u] >> ((o & 2u) * 8u)).x;
}

/** The four bytes of v (little endian: byte 0 is .x), as unsigned values. */
fn u8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(unpack4xU8(v));
}

/** The four bytes of v as signed (int8) values. */
fn i8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(unpack4xI8(v));
}

/** Bits 0..3 of b, one per byte: bit i of b becomes bit 0 of byte i (the 5th bits of four Q5 values). */
fn bits4(b: u32) -> u32 {
  return (b & 1u) | ((b & 2u) << 7u) | ((b & 4u) << 14u) | ((b & 8u) << 21u);
}

/** A sub-block whose values are q themselves (dense types). */
fn plain(q: vec4<f32>) -> Sub {
  var s = Sub();
  s.q[0] = q;
  s.lo = 1.0;
  s.hi = 1.0;
  return s;
}

/** The four low (sh = 0) or high (sh = 4) nibbles of the bytes of v, as integers (byte 0 is .x). */
fn nib4(v: u32, sh: u32) -> vec4<i32> {
  return vec4<i32>((vec4<u32>(v) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(15u));
}

/** Bits b .. b + 3 of v, one per lane, as 0 or `one` (the 5th bits of four Q5 values: one = 16). */
fn bit4(v: u32, b: u32, one: i32) -> vec4<i32> {
  return select(vec4<i32>(0), vec4<i32>(one), ((vec4<u32>(v) >> vec4<u32>(b, b + 1u, b + 2u, b + 3u)) & vec4<u32>(1u)) != vec4<u32>(0u));
}

/** The four bytes of v as signed (int8) integers (byte 0 is .x). */
fn sbyte4(v: u32) -> vec4<i32> {
  return (vec4<i32>(bitcast<i32>(v)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

/**
 * The 32 bits that start 2 bytes after an even offset o, from a (the word holding byte o) and b (the next word): the
 * upper half of a and the lower half of b when o is word-aligned, b itself when o is 2 bytes past a word (odd).
 */
fn at2(a: u32, b: u32, odd: bool) -> u32 {
  return select((a >> 16u) | (b << 16u), b, odd);
}

/** The word i < 4 of (a, b, c, d), by selects: a dynamic index into a private array would go through memory. */
fn pick4(a: u32, b: u32, c: u32, d: u32, i: u32) -> u32 {
  return select(select(a, b, i == 1u), select(c, d, i == 3u), i >= 2u);
}

/**
 * The 16 bytes at the even offset o as 4 words, from the two 16-byte loads that cover them, realigned in registers.
 * On llvmpipe two vec4 loads and some selects cost less than the five word loads ld4 makes.
 */
fn ld16(o: u32) -> vec4<u32> {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let k = (o >> 2u) & 3u;
  let odd = (o & 2u) != 0u;
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  return select(vec4<u32>(u0, u1, u2, u3), (vec4<u32>(u0, u1, u2, u3) >> vec4<u32>(16u)) | (vec4<u32>(u1, u2, u3, u4) << vec4<u32>(16u)), odd);
}
