// Copies each row's k and v heads from the fused q|k|v projection into the paged KV pool of one layer, at the row's
// slot (page * pageSize + offset). One thread per copied element: a copy is bound by memory, and scalar elements let
// any head size and any offsets into the qkv row work.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;        // (rows, qkvStride) f32, k at kOffset, v at vOffset
@group(0) @binding(2) var<storage, read> slots: array<u32>;      // (rows) u32, page * pageSize + offset
@group(0) @binding(3) var<storage, read_write> kv: array<f32>;   // (pages, 2, kvHeads, pageSize, headDim) f32

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // i enumerates (row, which: 0 = K / 1 = V, kvHead, d); params.n = rows * 2 * kvHeads * headDim.
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  let d = i % params.headDim;
  var t = i / params.headDim;
  let h = t % params.kvHeads;
  t = t / params.kvHeads;
  let which = t % 2u;
  let r = t / 2u;
  let slot = slots[r];
  let page = slot / params.pageSize;
  // A slot outside the pool is a scheduler bug; dropping the write keeps every other page intact.
  if (page >= params.pages) { return; }
  let src = r * params.qkvStride + select(params.kOffset, params.vOffset, which == 1u) + h * params.headDim + d;
  let dst = (((page * 2u + which) * params.kvHeads + h) * params.pageSize + slot % params.pageSize) * params.headDim + d;
  kv[dst] = qkv[src];
}
