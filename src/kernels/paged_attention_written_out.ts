// The per-head paged attention written out for one (head dim, query heads per invocation, rows per invocation): the
// body of shaders/paged_attention.wgsl's perHead / perHeadRows with every q, accumulator and K/V vec4 a named variable
// and the head-dim loops unrolled, for Chromium's GL route (Gpu.registerBlocks `unrolled`, gpu/register_blocks.ts).
// There ANGLE rewrites each dynamically indexed access to the loop version's private arrays (q0[d], a0[d]) as a
// clamp of the index, after which Mesa's llvmpipe keeps the arrays in memory; constant indices and named variables
// are left alone (as with shaders/matmul_prefill_unrolled.wgsl). Per head the same operations in the same order as the
// loop version (the dot product over d from 0 up, the online softmax, acc = fma(p, v, acc * c), the partials' merge),
// so both give the same bits (test/kernels/paged_attention.test.ts checks that on each adapter).
// Prepended: the Params struct and shaders/paged_attention_common.wgsl (bindings, key ranges, soft-cap, `online`).

/**
 * The most private vec4 values of q per invocation (head dim / 4 x heads x rows) written out; as many again hold the
 * accumulators. It covers every default per-head shape (three heads of 64 dims; blocks of rows of small heads, 32
 * floats x 4 rows); beyond it the loop version runs. Where it pays: heads of 64 dims (the SmolLM2-135M shape in 0.54x
 * the loop form's time in the page); heads of 8 dims run alike in both forms (`npm run bench -- attention`,
 * bench/RESULTS.md "Per-head attention on Chromium's GL route").
 */
export const MAX_WRITTEN_OUT_VEC4 = 48;

/** Whether the per-head variant of this shape is written out when the device asks for it. */
export function writtenOutFits(headDim: number, headsPerInvocation: number, rows: number): boolean {
  return (headDim / 4) * headsPerInvocation * rows <= MAX_WRITTEN_OUT_VEC4;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * WGSL body of the written-out per-head kernel: `hd4` = head dim / 4, `gq` query heads of one kv head per invocation
 * (1..3), `rb` adjacent rows per invocation (1, 2 or 4). Entry point `main`, workgroup size override WG.
 */
export function writtenOutPerHead(hd4: number, gq: number, rb: number): string {
  const D = range(hd4);
  const G = range(gq);
  const R = range(rb);
  const lines: string[] = [];
  const emit = (indent: number, ...ls: string[]) => lines.push(...ls.map((l) => ' '.repeat(indent) + l));
  // Names: row i, head g, vec4 d of the head dim.
  const qn = (i: number, g: number, d: number) => `q${i}_${g}_${d}`;
  const an = (i: number, g: number, d: number) => `a${i}_${g}_${d}`;
  const sn = (i: number, g: number) => `s${i}_${g}`;

  /** One key at offset o of a page (kBase, vBase in scope) into the state of the given rows. */
  const key = (ind: number, rows: number[]) => {
    emit(ind, 'let kRow = kBase + o * HD4;');
    for (const d of D) emit(ind, `let k${d} = kv[kRow + ${d}u];`);
    for (const i of rows)
      for (const g of G) {
        emit(ind, `var dot${i}_${g} = vec4<f32>(0.0);`);
        for (const d of D) emit(ind, `dot${i}_${g} = fma(${qn(i, g, d)}, k${d}, dot${i}_${g});`);
        emit(ind, `let w${i}_${g} = online(&${sn(i, g)}, softcap(dot${i}_${g}.x + dot${i}_${g}.y + dot${i}_${g}.z + dot${i}_${g}.w));`);
      }
    emit(ind, 'let vRow = vBase + o * HD4;');
    for (const d of D) emit(ind, `let v${d} = kv[vRow + ${d}u];`);
    for (const i of rows)
      for (const g of G)
        for (const d of D) emit(ind, `${an(i, g, d)} = fma(vec4<f32>(w${i}_${g}.y), v${d}, ${an(i, g, d)} * w${i}_${g}.x);`);
  };

  emit(0, 'override WG: u32 = 8u;', '', '@compute @workgroup_size(WG)');
  emit(0, 'fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {');
  emit(2, 'let id = gid.x + gid.y * nwg.x * WG;');
  emit(2, `let heads = params.nHeads / ${gq}u;`);
  emit(2, `if (id >= (params.rows + ${rb - 1}u) / ${rb}u * heads) { return; }`);
  emit(2, `let r0 = (id / heads) * ${rb}u;`);
  emit(2, `let h0 = (id % heads) * ${gq}u; // this invocation's first query head; ${gq} divides the group: one kv head`);
  emit(2, 'let kvh = h0 / params.group;');
  // Rows past the last one repeat it: computed, never written (as perHeadRows).
  emit(2, `let nr = min(${rb}u, params.rows - r0);`);
  for (const i of R.slice(1)) emit(2, `let r${i} = r0 + min(${i}u, nr - 1u);`);
  for (const i of R) {
    emit(2, `let qb${i} = r${i} * params.qStride4 + h0 * HD4;`);
    for (const g of G) for (const d of D) emit(2, `let ${qn(i, g, d)} = q[qb${i} + ${g * hd4 + d}u] * params.scaleLog2;`);
    for (const g of G) {
      for (const d of D) emit(2, `var ${an(i, g, d)} = vec4<f32>(0.0);`);
      emit(2, `var ${sn(i, g)} = HeadState(NEG_BIG, 0.0);`);
    }
  }
  if (rb > 1) {
    // The whole pages every row of the block holds from the first, walked once for all of them.
    emit(2, 'var end = select(0u, sharedKeys(r0, r1), nr > 1u);');
    if (rb > 2) emit(2, `end = min(end, ${R.slice(2).reduce((acc, i) => `min(${acc}, sharedKeys(r0, r${i}))`, 'sharedKeys(r0, r2)')});`);
    emit(2, 'let table = rowPath[r0] * params.maxPages;');
    emit(2, 'for (var start = 0u; start < end; start += params.pageSize) {');
    emit(4, 'let page = pageTable[table + start / params.pageSize];');
    emit(4, 'if (page >= params.pages) { continue; }');
    emit(4, 'let kBase = headBase(page, 0u, kvh);', 'let vBase = headBase(page, 1u, kvh);');
    emit(4, 'for (var o = 0u; o < params.pageSize; o++) {');
    key(6, R);
    emit(4, '}');
    emit(2, '}');
  }
  for (const i of R) {
    // Row i's own keys (all of them for one row per invocation), then its heads' partials merged and written.
    emit(2, i === 0 ? '{' : `if (nr > ${i}u) {`);
    emit(4, rb > 1 ? `let first = max(firstKey(r${i}), end);` : `let first = firstKey(r${i});`);
    emit(4, `let n = keyCount(r${i});`, `let table${i} = rowPath[r${i}] * params.maxPages;`);
    emit(4, 'for (var start = first - first % params.pageSize; start < n; start += params.pageSize) {');
    emit(6, `let page = pageTable[table${i} + start / params.pageSize];`);
    // A page id outside the pool is a scheduler bug: its keys are left out rather than read from another layer's data.
    emit(6, 'if (page >= params.pages) { continue; }');
    emit(6, 'let kBase = headBase(page, 0u, kvh);', 'let vBase = headBase(page, 1u, kvh);');
    emit(6, 'let count = min(params.pageSize, n - start);');
    emit(6, 'for (var o = select(0u, first - start, first > start); o < count; o++) {');
    key(8, [i]);
    emit(6, '}');
    emit(4, '}');
    emit(4, `let slots = partialSlots(r${i});`);
    for (const g of G) {
      const s = sn(i, g);
      emit(4, '{');
      emit(6, `let h = h0 + ${g}u;`);
      emit(6, 'for (var e = 0u; e < slots.y; e++) {');
      emit(8, 'let base = partialBase(slots.x + e, h);', 'let ml = partials[base + HD4];');
      emit(8, `let mNew = max(${s}.m, ml.x);`, `let c = exp2(${s}.m - mNew);`, 'let c2 = exp2(ml.x - mNew);');
      emit(8, `${s}.l = ${s}.l * c + ml.y * c2;`);
      for (const d of D) emit(8, `${an(i, g, d)} = ${an(i, g, d)} * c + partials[base + ${d}u] * c2;`);
      emit(8, `${s}.m = mNew;`);
      emit(6, '}');
      emit(6, `let inv = select(0.0, 1.0 / ${s}.l, ${s}.l > 0.0);`);
      emit(6, `let oBase = (r${i} * params.nHeads + h) * HD4;`);
      for (const d of D) emit(6, `out[oBase + ${d}u] = ${an(i, g, d)} * inv;`);
      emit(4, '}');
    }
    emit(2, '}');
  }
  emit(0, '}', '');
  return lines.join('\n');
}
