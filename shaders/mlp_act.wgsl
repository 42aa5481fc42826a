// The MLP's activation, one thread per output element (a 2-D grid when there are more than one dimension covers):
//   gated (GATED, SwiGLU / GeGLU): out[r, c] = act(gate[r, c]) * up[r, c], gate = in[r, 0:hidden], up = in[r, hidden:2*hidden]
//   plain (GPT-2, GPT-NeoX):       out[r, c] = act(in[r, c]), in (rows, hidden)
// act by ACT: 0 SiLU, 1 GELU tanh form (gelu_pytorch_tanh, gelu_new), 2 GELU erf form (exact GELU).
override WG: u32 = 256;
override ACT: u32 = 0u;
override GATED: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;       // (rows, 2 * hidden) f32 gate | up when GATED, else (rows, hidden)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (rows, hidden) f32

// act, sigmoid and erfc: shaders/activation.wgsl, composed before this body.

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let hidden = params.hidden;
  if (i >= params.rows * hidden) { return; }
  if (GATED) {
    let r = i / hidden;
    let g = r * 2u * hidden + (i - r * hidden);
    out[i] = act(inp[g]) * inp[g + hidden];
  } else {
    out[i] = act(inp[i]);
  }
}
