// Embedding lookup / row gather: out[r, :] = table[ids[r], :], for one chunk of a row-split table per dispatch.
// This dispatch holds table rows [rowStart, rowStart + chunkRows) and writes only output rows whose id falls there;
// the dispatch of the first chunk (rowStart = 0) also writes zeros for ids >= totalRows, so a bad id never reads
// out of bounds and leaves a defined row. One thread per output element; a 2-D grid for large row counts.
// The row is multiplied by params.scale (an exact copy when it is 1) and, with params.accumulate, added to out (then
// a bad id leaves out as it was).
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;     // (chunkRows, dim) f32, rows rowStart.. of the whole
@group(0) @binding(2) var<storage, read> ids: array<u32>;       // (rows) u32
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // (rows, dim) f32

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let dim = params.dim;
  if (i >= params.rows * dim) { return; }
  let r = i / dim;
  let c = i - r * dim;
  let id = ids[r];
  if (id >= params.rowStart && id - params.rowStart < params.chunkRows) {
    var v = table[(id - params.rowStart) * dim + c];
    if (params.scale != 1.0) { v *= params.scale; }
    if (params.accumulate != 0u) { v += out[i]; }
    out[i] = v;
  } else if (id >= params.totalRows && params.rowStart == 0u && params.accumulate == 0u) {
    out[i] = 0.0;
  }
}
