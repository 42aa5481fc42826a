// `forklm info`: what a model resolves to, read without a GPU: family, layer kinds with their RoPE, storage type,
// parameter count, context, and the switches of its spec.
import { readModel } from '../engine_load.js';
import type { LoadedModel } from '../model/load.js';
import { layerKinds, parameterCount, specSizes } from '../model/spec.js';
import type { ModelSpec, RopeSpec } from '../model/spec.js';
import { defineCommand } from './args.js';
import { WEIGHTS_FLAG } from './weights_flag.js';
import { plannedWeightBytes, weightBytesByType } from '../model/gpu_weights.js';
import type { WeightsMode } from '../weights/stored_matrix.js';
import { table } from './format.js';

export const infoFlags = {
  model: { type: 'string', default: 'stories260K', placeholder: 'name|path|url', description: 'Model name, HF folder, .gguf or llama2.c .bin' },
  weights: WEIGHTS_FLAG,
  json: { type: 'boolean', description: 'Print one JSON document instead of text' },
} as const;

/** A RopeSpec as plain JSON (the file's frequency factors as a list). */
function ropeJson(r: RopeSpec | null): unknown {
  return r === null ? null : { ...r, freqFactors: r.freqFactors ? [...r.freqFactors] : null };
}

/** The spec as plain JSON. */
export function specJson(s: ModelSpec): unknown {
  return { ...s, layers: s.layers.map((l) => ({ ...l, rope: ropeJson(l.rope) })) };
}

/**
 * What the weights take: the file's tensor bytes, and the bytes the GPU would hold under `mode` (matrices by storage
 * type; the total includes vectors and chunk padding as uploadWeights allocates them on a 128 MiB-binding adapter).
 */
export function weightsInfo(m: LoadedModel, mode: WeightsMode = 'as-stored'): { mode: WeightsMode; file_tensor_bytes: number; gpu_bytes: number; gpu_matrix_bytes_by_type: Record<string, number> } {
  return { mode, file_tensor_bytes: m.fileTensorBytes, gpu_bytes: plannedWeightBytes(m.modelWeights, mode), gpu_matrix_bytes_by_type: weightBytesByType(m.modelWeights, mode) };
}

/** The JSON document `forklm info --json` prints. */
export function modelInfo(m: LoadedModel, mode: WeightsMode = 'as-stored'): Record<string, unknown> {
  const s = m.spec;
  return {
    family: s.family,
    architecture: s.sourceArchitecture,
    format: m.format,
    dtype: m.dtype,
    parameters: parameterCount(m.modelWeights),
    context: s.maxSeqLen,
    vocab_size: s.vocabSize,
    layers: s.nLayers,
    hidden_size: s.dim,
    heads: s.attention.nHeads,
    kv_heads: s.attention.nKvHeads,
    head_dim: s.attention.headDim,
    layer_kinds: layerKinds(s).map((k) => ({ attention: k.attention, window: k.window, rope: ropeJson(k.rope), layers: k.layers, description: k.label })),
    bos_token_id: s.bosTokenId,
    eos_token_ids: s.eosTokenIds,
    source: m.label,
    weights: weightsInfo(m, mode),
    spec: specJson(s),
  };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 2 ** 24 ? 2 : 0)} MiB`;

function weightsLine(w: ReturnType<typeof weightsInfo>): string {
  const types = Object.entries(w.gpu_matrix_bytes_by_type).map(([t, n]) => `${t} ${mib(n)}`).join(', ');
  return `${mib(w.gpu_bytes)} on the GPU (${w.mode}; matrices ${types}), ${mib(w.file_tensor_bytes)} of tensors in the file`;
}

function compactLayers(layers: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < layers.length; ) {
    let j = i;
    while (j + 1 < layers.length && layers[j + 1] === layers[j] + 1) j++;
    runs.push(j > i ? `${layers[i]}-${layers[j]}` : `${layers[i]}`);
    i = j + 1;
  }
  return runs.join(',');
}

/** Human-readable lines of `forklm info`. */
export function modelInfoText(m: LoadedModel, mode: WeightsMode = 'as-stored'): string {
  const s = m.spec;
  const a = s.attention;
  const sizes = specSizes(s);
  const params = parameterCount(m.modelWeights);
  const mult = [
    s.embedScale !== 1 ? `embedding x${s.embedScale}` : '',
    s.residual.scale !== 1 ? `residual x${s.residual.scale}` : '',
    s.logitScale !== 1 ? `logits x${s.logitScale}` : '',
    s.finalSoftCap !== null ? `final soft-cap ${s.finalSoftCap}` : '',
  ].filter(Boolean);
  const biases = Object.entries({ ...a.bias }).filter(([, v]) => v).map(([k]) => k);
  const rows: [string, string][] = [
    ['family', `${s.family} (${s.sourceArchitecture})`],
    ['format', `${m.format}, ${m.dtype}`],
    ['parameters', `${params.toLocaleString('en-US')} (${(params / 1e6).toFixed(params < 1e7 ? 2 : 0)}M)`],
    ['context', `${s.maxSeqLen} tokens`],
    ['shape', `${s.nLayers} layers, hidden ${s.dim}, MLP ${s.mlp.hiddenDim}, vocab ${s.vocabSize}`],
    ['attention', `${a.nHeads} heads / ${a.nKvHeads} KV heads of ${a.headDim} (q ${sizes.qDim}, kv ${sizes.kvDim}), scale ${+a.queryScale.toPrecision(6)}` +
      `${a.softCap !== null ? `, soft-cap ${a.softCap}` : ''}${a.qkNorm ? `, q/k norm per ${a.qkNorm}` : ''}${biases.length ? `, bias ${biases.join('/')}` : ''}`],
    ['norm', `${s.norm.kind === 'rms' ? 'RMSNorm' : 'LayerNorm'} eps ${s.norm.eps}${s.norm.weightOffset ? ', weight 1 + w' : ''}; residual ${s.residual.layout}`],
    ['MLP', `${s.mlp.gated ? 'gated ' : ''}${s.mlp.activation}${s.mlp.bias.up ? ', biases' : ''}`],
    ['positions', s.positions === 'learned' ? 'learned absolute' : 'RoPE per layer kind'],
    ...layerKinds(s).map((k): [string, string] => [`layers ${compactLayers(k.layers)}`, k.label]),
    ...(mult.length ? [['multipliers', mult.join(', ')] as [string, string]] : []),
    ['embeddings', s.tiedEmbeddings ? 'tied (lm_head = embedding)' : 'separate lm_head'],
    ['weights', weightsLine(weightsInfo(m, mode))],
    ['BOS / EOS', `${s.bosTokenId ?? 'none'} / ${s.eosTokenIds.join(', ')}`],
    ['source', m.label],
  ];
  return table(rows, '  ');
}

export const infoCommand = defineCommand({
  summary: 'Show what a model resolves to (family, layer kinds, RoPE per layer kind, dtype, parameters, context) without a GPU',
  details: 'Examples:\n  forklm info --model stories260K\n  forklm info --model ./Qwen3-0.6B --json',
  flags: infoFlags,
  async run({ flags: f }, ctx) {
    const m = await readModel(f.model);
    ctx.stdout(f.json ? JSON.stringify(modelInfo(m, f.weights)) + '\n' : modelInfoText(m, f.weights));
    return 0;
  },
});

