// Helpers every weight-loading snippet (wload_<type>.wgsl) uses to read GGUF blocks from `w`, the (bytes / 4) u32
// words of a weight chunk that the kernel body declares. Every field of every block lies at an even byte offset (all
// block sizes are even), so a 32-bit field is at worst 2 bytes off a word boundary; the host pads each chunk with
// one spare word, so the second load of wd2 never leaves the buffer.

/** The word at byte offset o, o % 4 == 0. */
fn wd(o: u32) -> u32 {
  return w[o >> 2u];
}

/** The 32 bits at byte offset o, o % 2 == 0: one word, or the halves of two neighbours. */
fn wd2(o: u32) -> u32 {
  let i = o >> 2u;
  let a = w[i];
  let b = w[i + 1u];
  return select(a, (a >> 16u) | (b << 16u), (o & 2u) != 0u);
}

/** The f16 at byte offset o (o % 2 == 0), widened: unpack2x16float is core WGSL, no shader-f16 needed. */
fn half_at(o: u32) -> f32 {
  return unpack2x16float(w[o >> 2u] >> ((o & 2u) * 8u)).x;
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
