// F16 weights: blocks of 4 values, 8 bytes, widened by unpack2x16float (core WGSL, every adapter).
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 8u;
alias Blk = u32;
fn blk_head(o: u32) -> Blk { return 0u; }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let i = o >> 2u;
  return vec4<f32>(unpack2x16float(w[i]), unpack2x16float(w[i + 1u]));
}
