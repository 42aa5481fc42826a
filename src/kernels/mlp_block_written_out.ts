// mlp_block's three phase functions written out (named variables for the 8 x 8 accumulator blocks, the row and column
// offsets and the norm's sums, no loop-indexed arrays) for Chromium's GL route, where ANGLE clamps every dynamic array
// index and Mesa's llvmpipe then keeps the arrays in memory: the loop form ran 2.6x the three written-out matmuls
// there (bench/RESULTS.md "Peers"). Same operations in the same order as shaders/mlp_block.wgsl (stores in the same
// column-then-row order, each element written once): same bits (test/kernels/mlp_block.test.ts runs both forms).

const MR = 8;
const NR = 8;
const I = [...Array(MR).keys()];
const J = [...Array(NR).keys()];

/** The k loop's body: w_j from `w`, then for each row x_i as `xv(i)` fma'd into a_i_j. */
function kLoop(w: string, xv: (i: number) => string, rowExtra: (i: number) => string = () => ''): string {
  const loads = J.map((j) => `    let w${j} = ${w}[wr${j} + k];`).join('\n');
  const rows = I.map((i) => `    {\n${rowExtra(i)}      let xv = ${xv(i)};\n${J.map((j) => `      a${i}_${j} = fma(xv, w${j}, a${i}_${j});`).join('\n')}\n    }`).join('\n');
  return `  for (var k = 0u; k < k4; k++) {\n${loads}\n${rows}\n  }`;
}

function offsets(rowStride: string, nMax: string): string {
  const xr = I.map((i) => `  let xr${i} = min(m0 + ${i}u, params.m - 1u) * ${rowStride};`).join('\n');
  const wr = J.map((j) => `  let wr${j} = min(n0 + ${j}u, ${nMax} - 1u) * k4;`).join('\n');
  const acc = I.map((i) => J.map((j) => `  var a${i}_${j} = vec4<f32>();`).join('\n')).join('\n');
  return `${xr}\n${wr}\n${acc}`;
}

/** Stores column by column, row by row, as the loop form's nested loops with their breaks. */
function stores(nMax: string, width: string, store: (i: number, j: number) => string): string {
  return J.map((j) => `  if (n0 + ${j}u < ${nMax}) {\n${I.map((i) => `    if (m0 + ${i}u < params.m) {\n      let at = (m0 + ${i}u) * ${width} + n0 + ${j}u;\n${store(i, j)}\n    }`).join('\n')}\n  }`).join('\n');
}

const addInto = (i: number, j: number) => `      var v = finish(a${i}_${j}, 1.0);\n      v += hidden[at / 4u][at % 4u];\n      hidden[at / 4u][at % 4u] = v;`;

/** WGSL of oBlock, guBlock and downBlock written out (the loop form's signatures and effects). */
export function mlpBlockPhasesWrittenOut(): string {
  const o = `fn oBlock(m0: u32, n0: u32) {\n  let k4 = params.qDim / 4u;\n${offsets('k4', 'params.dim')}\n${kLoop('wo', (i) => `attnOut[xr${i} + k]`)}\n${stores('params.dim', 'params.dim', addInto)}\n}`;
  const ss = I.map((i) => `  var ss${i} = 0.0;`).join('\n');
  const sc = I.map((i) => `  let sc${i} = 1.0 / sqrt(ss${i} / f32(params.dim) + params.eps);`).join('\n');
  const gu =
    `fn guBlock(m0: u32, n0: u32) {\n  let k4 = params.dim / 4u;\n  let n2 = 2u * params.hidden;\n${offsets('k4', 'n2')}\n${ss}\n` +
    `${kLoop('wgu', () => 'v * g[k]', (i) => `      let v = hidden[xr${i} + k];\n      ss${i} += dot(v, v);\n`)}\n${sc}\n` +
    `${stores('n2', 'n2', (i, j) => `      gateUp[at / 4u][at % 4u] = finish(a${i}_${j}, sc${i});`)}\n}`;
  const down = `fn downBlock(m0: u32, n0: u32) {\n  let k4 = params.hidden / 4u;\n${offsets('(2u * k4)', 'params.dim')}\n${kLoop('wd', (i) => `act4(gateUp[xr${i} + k]) * gateUp[xr${i} + k4 + k]`)}\n${stores('params.dim', 'params.dim', addInto)}\n}`;
  return `${o}\n\n${gu}\n\n${down}\n`;
}

const FIRST = '// Columns n0 .. n0 + 7 of o for rows';
const MAIN = '@compute';

/** shaders/mlp_block.wgsl with its phase functions (from the o phase's comment up to the entry point) written out. */
export function mlpBlockWrittenOut(loopForm: string): string {
  const a = loopForm.indexOf(FIRST);
  const b = loopForm.indexOf(MAIN);
  if (a < 0 || b < a) throw new Error('mlp_block_written_out: shaders/mlp_block.wgsl no longer has the phase functions between "' + FIRST + '" and "' + MAIN + '"');
  return `${loopForm.slice(0, a)}${mlpBlockPhasesWrittenOut()}\n${loopForm.slice(b)}`;
}
