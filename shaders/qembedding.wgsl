// Embedding gather from a table in any storage type: out[r, :] = table[ids[r], :], dequantized in registers, for one
// chunk of a row-split table per dispatch (composed with wload_common.wgsl and a wload_<type>.wgsl like qmatmul).
// This dispatch holds table rows [rowStart, rowStart + chunkRows) and writes only output rows whose id falls there;
// the first chunk's dispatch (rowStart = 0) also writes zeros for ids >= totalRows, so a bad id never reads out of
// bounds. One thread per 4 output values (one blk_unit); a 2-D grid for large row counts. Needs dim % QK == 0.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;             // (chunkRows, rowBytes) bytes as words + 1 spare word
@group(0) @binding(2) var<storage, read> ids: array<u32>;           // (rows) u32
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>; // (rows, dim / 4) vec4

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let d4 = params.dim / 4u;
  if (i >= params.rows * d4) { return; }
  let r = i / d4;
  let c = i - r * d4; // unit of 4 values in the row
  let id = ids[r];
  if (id >= params.rowStart && id - params.rowStart < params.chunkRows) {
    let o = (id - params.rowStart) * params.rowBytes + (c / (QK / 4u)) * BLOCK_BYTES;
    out[i] = blk_unit(o, blk_head(o), c % (QK / 4u));
  } else if (id >= params.totalRows && params.rowStart == 0u) {
    out[i] = vec4<f32>(0.0);
  }
}
