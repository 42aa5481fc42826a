// The attention prologue of one layer, on the fused q|k|v rows, in one dispatch: optional RMSNorm of q and k (per
// head: Qwen 3, Gemma 3; or over the whole projection: OLMo 2), RoPE on the first `rotaryHalf * 2` dims of every q and
// k head (Hugging Face rotate-half layout, partial rotary: GPT-NeoX, Phi-3; none for a NoPE layer: rotaryHalf = 0),
// and the KV write of each row's k and v heads into the layer's paged pool at the row's slot. Folding the KV write in
// saves a dispatch per layer, which decode on a CPU adapter pays for.
//
// One invocation per (row, unit). Units of a row: the q norm groups, the k norm groups, then the Hkv v heads. A norm
// group is one head (NORM 0 or 1) or the whole q (or k) projection (NORM 2); a group's invocation reads all of it for
// the mean square before writing any of it, so groups never race.
//
// RoPE: angle = pos * invFreq[i] with invFreq from the host (the model's RoPE variant: default, linear, dynamic,
// llama3, yarn...), times `ropeScale` on cos and sin (yarn's attention factor; 1 otherwise), computed in turns by
// shaders/rope_turns.wgsl (composed before this body; the precision argument is there). Without a q/k norm the model
// runs RoPE and the KV write in the q|k|v matmul's epilogue instead (kernels/y_epilogue.ts); this kernel serves the
// q/k-norm families, whose norm needs whole heads.
override NORM: u32 = 0u; // 0: no q/k norm, 1: RMSNorm per head (weight (hd)), 2: RMSNorm over the projection (weight (H*hd))

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;   // (rows, qkvStride) f32: q heads | k heads | v heads
@group(0) @binding(2) var<storage, read> positions: array<u32>; // (rows) u32
@group(0) @binding(3) var<storage, read> freq: array<vec4<f32>>; // (max(rotaryHalf, 1)) turns per position as a + b + c + d
@group(0) @binding(4) var<storage, read> qw: array<f32>;        // (hd) or (Hq*hd) f32 q norm weight; a dummy when NORM = 0
@group(0) @binding(5) var<storage, read> kw: array<f32>;        // (hd) or (Hkv*hd) f32 k norm weight; a dummy when NORM = 0
@group(0) @binding(6) var<storage, read> slots: array<u32>;     // (rows) u32 page * pageSize + offset
@group(0) @binding(7) var<storage, read_write> kv: array<f32>;  // (pages, 2, Hkv, pageSize, hd) f32

/** (sin, cos) * ropeScale of pos * invFreq[i] (rotationTurns: shaders/rope_turns.wgsl, composed before this body). */
fn rotation(p: f32, i: u32) -> vec2<f32> {
  return rotationTurns(p, freq[i]) * params.ropeScale;
}

/** Where (row's slot, which: 0 = K / 1 = V, kv head) starts in the pool, or NO_SLOT when the slot is outside it. */
const NO_SLOT: u32 = 0xffffffffu;
fn poolBase(r: u32, which: u32, h: u32) -> u32 {
  let slot = slots[r];
  let page = slot / params.pageSize;
  // A slot outside the pool is a scheduler bug; dropping the write keeps every other page intact.
  if (page >= params.pages) { return NO_SLOT; }
  return (((page * 2u + which) * params.kvHeads + h) * params.pageSize + slot % params.pageSize) * params.headDim;
}

fn normWeight(isK: bool, i: u32) -> f32 {
  if (isK) { return kw[i]; }
  return qw[i];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  let units = params.unitsPerRow;
  if (t >= params.rows * units) { return; }
  let r = t / units;
  let u = t % units;
  let hd = params.headDim;
  let row = r * params.qkvStride;
  let qDim = params.nHeads * hd;
  let kvDim = params.kvHeads * hd;
  let qGroups = select(params.nHeads, 1u, NORM == 2u);
  let kGroups = select(params.kvHeads, 1u, NORM == 2u);

  if (u >= qGroups + kGroups) {
    // A v head: copied into the pool as it is.
    let h = u - qGroups - kGroups;
    let dst = poolBase(r, 1u, h);
    if (dst == NO_SLOT) { return; }
    let src = row + qDim + kvDim + h * hd;
    for (var d = 0u; d < hd; d++) { kv[dst + d] = x[src + d]; }
    return;
  }
  let isK = u >= qGroups;
  let g = select(u, u - qGroups, isK);
  let perGroup = select(1u, select(params.nHeads, params.kvHeads, isK), NORM == 2u); // heads in this group
  let firstHead = g * perGroup;
  let start = row + select(0u, qDim, isK) + firstHead * hd; // the group's first value in x
  let n = perGroup * hd;

  var scale = 1.0;
  if (NORM != 0u) {
    var ss = 0.0;
    for (var i = 0u; i < n; i++) { let v = x[start + i]; ss += v * v; }
    // 1/sqrt rather than inverseSqrt: WGSL allows inverseSqrt 2 ulp, the division keeps ~1 ulp (as in rmsnorm.wgsl).
    scale = 1.0 / sqrt(ss / f32(n) + params.eps);
  }
  let p = f32(positions[r]);
  let half = params.rotaryHalf;
  for (var hh = 0u; hh < perGroup; hh++) {
    let base = start + hh * hd;
    let wBase = select(0u, hh * hd, NORM == 2u); // per-head weights restart at every head
    let dst = select(NO_SLOT, poolBase(r, 0u, firstHead + hh), isK);
    for (var i = 0u; i < hd; i++) {
      if (i >= half && i < 2u * half) { continue; } // written with its pair
      var x0 = x[base + i];
      if (NORM != 0u) { x0 = x0 * scale * normWeight(isK, wBase + i); }
      if (i < half) {
        var x1 = x[base + i + half];
        if (NORM != 0u) { x1 = x1 * scale * normWeight(isK, wBase + i + half); }
        let sc = rotation(p, i);
        let y0 = x0 * sc.y - x1 * sc.x;
        let y1 = x1 * sc.y + x0 * sc.x;
        x[base + i] = y0;
        x[base + i + half] = y1;
        if (dst != NO_SLOT) { kv[dst + i] = y0; kv[dst + i + half] = y1; }
      } else {
        x[base + i] = x0;
        if (dst != NO_SLOT) { kv[dst + i] = x0; }
      }
    }
  }
}
