// Where each canonical weight lives in each format, and the shape it must have. Shapes are row-major (out, in), the
// way safetensors writes them; the GGUF reader already reverses GGUF's ne[] order into this form.
import type { ModelConfig } from './config.js';

export type GlobalSlot = 'embed' | 'finalNorm' | 'lmHead';
export type LayerSlot = 'attnNorm' | 'wq' | 'wk' | 'wv' | 'bq' | 'bk' | 'bv' | 'wo' | 'mlpNorm' | 'wGate' | 'wUp' | 'wDown';
export type ModelFormat = 'hf' | 'gguf' | 'llama2c';

export interface WeightNameMap {
  global: Record<GlobalSlot, string>;
  layer: Record<LayerSlot, (layer: number) => string>;
}

const hfLayer = (suffix: string) => (i: number) => `model.layers.${i}.${suffix}`;

export const HF_NAMES: WeightNameMap = {
  global: { embed: 'model.embed_tokens.weight', finalNorm: 'model.norm.weight', lmHead: 'lm_head.weight' },
  layer: {
    attnNorm: hfLayer('input_layernorm.weight'),
    wq: hfLayer('self_attn.q_proj.weight'),
    wk: hfLayer('self_attn.k_proj.weight'),
    wv: hfLayer('self_attn.v_proj.weight'),
    bq: hfLayer('self_attn.q_proj.bias'),
    bk: hfLayer('self_attn.k_proj.bias'),
    bv: hfLayer('self_attn.v_proj.bias'),
    wo: hfLayer('self_attn.o_proj.weight'),
    mlpNorm: hfLayer('post_attention_layernorm.weight'),
    wGate: hfLayer('mlp.gate_proj.weight'),
    wUp: hfLayer('mlp.up_proj.weight'),
    wDown: hfLayer('mlp.down_proj.weight'),
  },
};

const blk = (suffix: string) => (i: number) => `blk.${i}.${suffix}`;

export const GGUF_NAMES: WeightNameMap = {
  global: { embed: 'token_embd.weight', finalNorm: 'output_norm.weight', lmHead: 'output.weight' },
  layer: {
    attnNorm: blk('attn_norm.weight'),
    wq: blk('attn_q.weight'),
    wk: blk('attn_k.weight'),
    wv: blk('attn_v.weight'),
    bq: blk('attn_q.bias'),
    bk: blk('attn_k.bias'),
    bv: blk('attn_v.bias'),
    wo: blk('attn_output.weight'),
    mlpNorm: blk('ffn_norm.weight'),
    wGate: blk('ffn_gate.weight'),
    wUp: blk('ffn_up.weight'),
    wDown: blk('ffn_down.weight'),
  },
};

const l2c = (section: string) => (i: number) => `${section}.${i}`;
const noBias = (i: number) => `(llama2.c has no q/k/v bias; layer ${i})`;

/** llama2.c arrays by the names io/llama2c.ts gives them (per-layer slices are "<section>.<layer>"). */
export const LLAMA2C_NAMES: WeightNameMap = {
  global: { embed: 'token_embedding_table', finalNorm: 'rms_final_weight', lmHead: 'wcls' },
  layer: {
    attnNorm: l2c('rms_att_weight'),
    wq: l2c('wq'),
    wk: l2c('wk'),
    wv: l2c('wv'),
    bq: noBias,
    bk: noBias,
    bv: noBias,
    wo: l2c('wo'),
    mlpNorm: l2c('rms_ffn_weight'),
    wGate: l2c('w1'),
    wUp: l2c('w3'),
    wDown: l2c('w2'),
  },
};

export const NAME_MAPS: Record<ModelFormat, WeightNameMap> = { hf: HF_NAMES, gguf: GGUF_NAMES, llama2c: LLAMA2C_NAMES };

/** The row-major shape a slot must have under `config`. */
export function expectedShape(c: ModelConfig, slot: GlobalSlot | LayerSlot): number[] {
  switch (slot) {
    case 'embed':
    case 'lmHead':
      return [c.vocabSize, c.dim];
    case 'finalNorm':
    case 'attnNorm':
    case 'mlpNorm':
      return [c.dim];
    case 'wq':
      return [c.qDim, c.dim];
    case 'wk':
    case 'wv':
      return [c.kvDim, c.dim];
    case 'bq':
      return [c.qDim];
    case 'bk':
    case 'bv':
      return [c.kvDim];
    case 'wo':
      return [c.dim, c.qDim];
    case 'wGate':
    case 'wUp':
      return [c.hiddenDim, c.dim];
    case 'wDown':
      return [c.dim, c.hiddenDim];
  }
}

/** Layer slots every model has, then the bias slots that only qkv-bias models have. */
export const LAYER_SLOTS: readonly LayerSlot[] = ['attnNorm', 'wq', 'wk', 'wv', 'wo', 'mlpNorm', 'wGate', 'wUp', 'wDown'];
export const BIAS_SLOTS: readonly ('bq' | 'bk' | 'bv')[] = ['bq', 'bk', 'bv'];
