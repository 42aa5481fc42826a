// The per-head attention's output on 8 bits as well (kernels/paged_attention.ts quantizeOut): after writing a head's
// output, the invocation quantizes it to the words and scales quantize_x8.wgsl would make of that row of `out` with the
// plain prologue (xq8_block.wgsl, the same arithmetic), for the out-projection on 8-bit activations, which then needs
// no quantize dispatch of its own (one dispatch fewer per layer, ~30 us each on llvmpipe). A head of headDim values
// is headDim / 32 whole blocks (the host guards headDim % 32 == 0): block j of head h of row r is block
// h headDim / 32 + j of the row's nHeads headDim / 32.
@group(0) @binding(9) var<storage, read_write> xq: array<vec4<u32>>;  // (rows, nHeads headDim / 32, 8) vec4: 32 words per block
@group(0) @binding(10) var<storage, read_write> xs: array<vec2<f32>>; // (rows, nHeads headDim / 32): (dx, sx) per block

/** Head h of row r, whose output is acc * inv (as finishHead writes it), on 8 bits. */
fn xqOutHead(r: u32, h: u32, acc: ptr<function, array<vec4<f32>, MAX_HD4>>, inv: f32) {
  let perHead = HD4 / 8u;
  for (var j = 0u; j < perHead; j++) {
    let d = 8u * j;
    let q = xq_block8(
      (*acc)[d] * inv, (*acc)[d + 1u] * inv, (*acc)[d + 2u] * inv, (*acc)[d + 3u] * inv,
      (*acc)[d + 4u] * inv, (*acc)[d + 5u] * inv, (*acc)[d + 6u] * inv, (*acc)[d + 7u] * inv,
    );
    // rs = 1: quantize_x8's plain prologue, the same f32 dx.
    xq_store((r * params.nHeads + h) * perHead + j, q, 1.0);
  }
}
