// Which source names map to which forklm family, and which well-known families are refused, by name and reason.
// Sources: transformers' model_type / architectures strings, llama.cpp's general.architecture names (llama-arch.cpp).
import { UnsupportedModelError } from '../errors.js';
import { FAMILIES, type Family } from './spec.js';

/** HF `model_type` -> family. */
export const HF_MODEL_TYPES: Readonly<Record<string, Family>> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gemma: 'gemma',
  gemma2: 'gemma2',
  gemma3_text: 'gemma3',
  phi3: 'phi3',
  smollm3: 'smollm3',
  olmo2: 'olmo2',
  granite: 'granite',
  gpt2: 'gpt2',
  gpt_neox: 'gpt_neox',
};

/** HF `architectures[]` entries forklm runs (the causal-LM heads of the families above). */
export const HF_ARCHITECTURES: Readonly<Record<string, Family>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  GemmaForCausalLM: 'gemma',
  Gemma2ForCausalLM: 'gemma2',
  Gemma3ForCausalLM: 'gemma3',
  Phi3ForCausalLM: 'phi3',
  SmolLM3ForCausalLM: 'smollm3',
  Olmo2ForCausalLM: 'olmo2',
  GraniteForCausalLM: 'granite',
  GPT2LMHeadModel: 'gpt2',
  GPTNeoXForCausalLM: 'gpt_neox',
};

/** GGUF general.architecture -> family (llama.cpp writes Mistral and Llama 3 as "llama"). */
export const GGUF_ARCHITECTURES: Readonly<Record<string, Family>> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gemma: 'gemma',
  gemma2: 'gemma2',
  gemma3: 'gemma3',
  phi3: 'phi3',
  smollm3: 'smollm3',
  olmo2: 'olmo2',
  granite: 'granite',
  gpt2: 'gpt2',
  gptneox: 'gpt_neox',
};

type Refusal = 'moe' | 'multimodal' | 'ssm';

/** Well-known names of families forklm does not run, on both the HF and GGUF side. */
const REFUSED: Readonly<Record<string, Refusal>> = {
  mixtral: 'moe', qwen2_moe: 'moe', qwen3_moe: 'moe', qwen2moe: 'moe', qwen3moe: 'moe', olmoe: 'moe', granitemoe: 'moe',
  granitemoehybrid: 'ssm', phimoe: 'moe', deepseek_v2: 'moe', deepseek_v3: 'moe', deepseek2: 'moe', dbrx: 'moe',
  gpt_oss: 'moe', 'gpt-oss': 'moe', llama4: 'moe', llama4_text: 'moe', arctic: 'moe', grok: 'moe',
  gemma3: 'multimodal', gemma3n: 'multimodal', llava: 'multimodal', llava_next: 'multimodal', mllama: 'multimodal',
  qwen2_vl: 'multimodal', qwen2_5_vl: 'multimodal', qwen2vl: 'multimodal', paligemma: 'multimodal', idefics3: 'multimodal',
  smolvlm: 'multimodal', phi3_v: 'multimodal', phi4_multimodal: 'multimodal', mistral3: 'multimodal', pixtral: 'multimodal',
  mamba: 'ssm', mamba2: 'ssm', falcon_mamba: 'ssm', jamba: 'ssm', zamba: 'ssm', zamba2: 'ssm', rwkv: 'ssm', rwkv6: 'ssm',
  rwkv7: 'ssm', recurrent_gemma: 'ssm', falcon_h1: 'ssm', lfm2: 'ssm', nemotron_h: 'ssm',
};

const WHY: Record<Refusal, string> = {
  moe: 'a mixture-of-experts model',
  multimodal: 'a multimodal (vision/audio) model',
  ssm: 'a state-space / recurrent model (Mamba-style)',
};

/** The supported families, for help texts: "llama (Llama 2/3, ...), ...". */
export const FAMILY_EXAMPLES: Readonly<Record<Family, string>> = {
  llama: 'Llama 2/3.x, TinyLlama, SmolLM2',
  mistral: 'Mistral 7B, sliding window',
  qwen2: 'Qwen2, Qwen2.5',
  qwen3: 'Qwen3 dense',
  gemma: 'Gemma',
  gemma2: 'Gemma 2',
  gemma3: 'Gemma 3 text: 270m, 1b',
  phi3: 'Phi-3, Phi-4-mini',
  smollm3: 'SmolLM3',
  olmo2: 'OLMo 2',
  granite: 'Granite 3.x dense',
  gpt2: 'GPT-2',
  gpt_neox: 'GPT-NeoX, Pythia',
};

export function supportedFamiliesText(): string {
  return FAMILIES.map((f) => `${f} (${FAMILY_EXAMPLES[f]})`).join(', ');
}

/** Throws UnsupportedModelError when `name` (a model_type, architecture or GGUF arch) is a refused family. */
export function refuseByName(name: string, source: string, hint = ''): void {
  const key = name.toLowerCase();
  const why = REFUSED[key] ?? (/moe/.test(key) ? 'moe' : /mamba|rwkv/.test(key) ? 'ssm' : undefined);
  if (why) {
    throw new UnsupportedModelError(
      `${source}: ${name} is ${WHY[why]}; forklm runs dense text decoders only: ${FAMILIES.join(', ')}.${hint ? ' ' + hint : ''}`,
    );
  }
}
