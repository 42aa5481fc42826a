// Embedding gather from a table in any storage type: out[r, :] = table[ids[r], :], dequantized in registers, for one
// chunk of a row-split table per dispatch (composed with wload_common.wgsl and a wload_<type>.wgsl like qmatmul).
// This dispatch holds table rows [rowStart, rowStart + chunkRows) and writes only output rows whose id falls there;
// the first chunk's dispatch (rowStart = 0) also writes zeros for ids >= totalRows, so a bad id never reads out of
// bounds. One thread per 4 output values; a 2-D grid for large row counts. Needs dim % QK == 0.
// As embedding.wgsl: the row times params.scale, added to out with params.accumulate (ids >= V then leave it as is).
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w4: array<vec4<u32>>;      // (chunkRows, rowBytes) bytes + spare
@group(0) @binding(2) var<storage, read> w1: array<u32>;            // the same buffer as words
@group(0) @binding(3) var<storage, read> ids: array<u32>;           // (rows) u32
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>; // (rows, dim / 4) vec4

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let d4 = params.dim / 4u;
  if (i >= params.rows * d4) {
    if (params.rows == 0u) { out[0] = vec4<f32>(f32(w4[0].x + w1[0])); } // keeps both views in the layout (qmatmul.wgsl)
    return;
  }
  let r = i / d4;
  let c = i - r * d4; // vec4 of the row
  let id = ids[r];
  if (id >= params.rowStart && id - params.rowStart < params.chunkRows) {
    let o = (id - params.rowStart) * params.rowBytes + (c / (QK / 4u)) * BLOCK_BYTES;
    let u = c % (QK / 4u);
    var sub = sub_load(o, blk_head(o), u / SUB4);
    let v = u % SUB4;
    let first = v < HALF4;
    var x = select(sub.hi, sub.lo, first) * sub.q[v] + select(sub.offHi, sub.offLo, first);
    if (params.scale != 1.0) { x *= params.scale; }
    if (params.accumulate != 0u) { x += out[i]; }
    out[i] = x;
  } else if (id >= params.totalRows && params.rowStart == 0u && params.accumulate == 0u) {
    out[i] = vec4<f32>(0.0);
  }
}
