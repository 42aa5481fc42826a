// GGUF byte-level BPE vocabularies (tokenizer.ggml.model == "gpt2": GPT-2, Llama 3, Qwen, SmolLM, OLMo...) as a
// tokenizer.json for @huggingface/tokenizers: the GGUF tokens become the BPE vocabulary, tokenizer.ggml.merges its
// merges, and tokenizer.ggml.pre (llama.cpp's name for the pre-tokenizer) selects the split regexes llama.cpp itself
// applies for that name (llm_tokenizer_bpe in llama.cpp's src/llama-vocab.cpp), each as a Split pre-tokenizer with
// Isolated behaviour (llama.cpp keeps matches and the text between them as pieces, regex after regex), then GPT-2's
// byte-to-unicode map (ByteLevel without its own regex). Control and user-defined tokens become added tokens.
//
// Where llama.cpp differs from a hub tokenizer.json, this follows llama.cpp, since the GGUF file is its format: no
// normalizer (Qwen's tokenizer.json has NFC; llama.cpp does not normalize), and a symbol missing from the vocabulary
// is dropped rather than mapped to an unknown token.
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { HfTokenizerAdapter } from './hf.js';

type Metadata = Readonly<Record<string, unknown>>;

// llama.cpp's regexes, verbatim (its adapted forms: (?i:...) spelled out as character classes).
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEFAULT = ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'];

interface PreTokenizer {
  regexes: readonly string[];
  /** llama.cpp checks a whole pre-token against the vocabulary before merging (Llama 3's ignore_merges). */
  ignoreMerges: boolean;
  /** BOS when the file has no tokenizer.ggml.add_bos_token (llama.cpp sets it for the Llama 3 family only). */
  addBos: boolean;
}

/** tokenizer.ggml.pre names (llama.cpp's llama_vocab::impl::load) -> the regexes llama.cpp splits with. */
const PRE: Record<string, PreTokenizer> = {};
const add = (names: readonly string[], regexes: readonly string[], llama3 = false): void => {
  for (const n of names) PRE[n] = { regexes, ignoreMerges: llama3, addBos: llama3 };
};
add(['default'], DEFAULT);
add(['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], [LLAMA3], true);
add(['dbrx', 'smaug-bpe'], [LLAMA3]);
add(['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v1-en', 'jina-v2-es', 'jina-v2-de', 'jina-v2-code', 'roberta-bpe', 'mpt', 'olmo', 'jais'], [GPT2]);
add(['qwen2', 'deepseek-r1-qwen', 'stablelm2', 'megrez', 'hunyuan'], [QWEN2]);
add(['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone', 'minerva-7b'], ['\\p{N}', GPT2]);
add(['falcon'], ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]']);
add(['chatglm-bpe'], [LLAMA3]);

/** The tokenizer.ggml.pre names this module reads. */
export const GGUF_BPE_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE);

/** GGUF's token_type values (llama.cpp's llama_token_type): control and user-defined tokens are added tokens. */
const CONTROL = 3;
const USER_DEFINED = 4;
const NO_TOKEN = 0xffffffff;

function strings(meta: Metadata, key: string, label: string): readonly unknown[] {
  const v = meta[key];
  if (Array.isArray(v)) return v;
  throw new ModelFormatError(`${label}: metadata key ${key} is ${v === undefined ? 'missing' : 'not an array'}; the GGUF BPE vocabulary is incomplete: convert the model again or use its tokenizer.json.`);
}

function tokenId(meta: Metadata, key: string, n: number): number | null {
  const v = meta[key];
  const id = typeof v === 'bigint' ? Number(v) : v;
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < n && id !== NO_TOKEN ? id : null;
}

/** Whether the GGUF metadata holds a byte-level BPE ("gpt2") vocabulary. */
export function hasGgufBpeVocab(meta: Metadata): boolean {
  return meta['tokenizer.ggml.model'] === 'gpt2' && Array.isArray(meta['tokenizer.ggml.tokens']);
}

/**
 * The tokenizer.json and tokenizer_config.json (objects) that @huggingface/tokenizers needs for a GGUF "gpt2"
 * vocabulary. Throws UnsupportedModelError for a tokenizer.ggml.pre it does not know (naming the known ones) and
 * ModelFormatError for missing or inconsistent vocabulary arrays.
 */
export function ggufBpeTokenizerJson(meta: Metadata, label = 'GGUF vocabulary'): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  if (meta['tokenizer.ggml.model'] !== 'gpt2') {
    throw new UnsupportedModelError(`${label}: tokenizer.ggml.model is ${JSON.stringify(meta['tokenizer.ggml.model'])}, not a byte-level BPE ("gpt2") vocabulary.`);
  }
  const preName = typeof meta['tokenizer.ggml.pre'] === 'string' ? (meta['tokenizer.ggml.pre'] as string) : 'default';
  const pre = PRE[preName];
  if (!pre) {
    throw new UnsupportedModelError(
      `${label}: tokenizer.ggml.pre is "${preName}", a pre-tokenizer forklm does not know (it knows ${GGUF_BPE_PRE_TOKENIZERS.join(', ')}). ` +
        "Load the model's tokenizer.json instead, or give the prompt as token ids.",
    );
  }
  const tokens = strings(meta, 'tokenizer.ggml.tokens', label);
  const merges = strings(meta, 'tokenizer.ggml.merges', label);
  const types = meta['tokenizer.ggml.token_type'];
  const n = tokens.length;
  if (n === 0) throw new ModelFormatError(`${label}: tokenizer.ggml.tokens is empty.`);
  if (types !== undefined && (!Array.isArray(types) || types.length !== n)) {
    throw new ModelFormatError(`${label}: tokenizer.ggml.token_type does not have one entry per token (${n}); the vocabulary is corrupt.`);
  }
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (typeof t !== 'string') throw new ModelFormatError(`${label}: token ${i} is not a string; the vocabulary is corrupt.`);
    vocab[t] = i;
    const ty = Array.isArray(types) ? Number(types[i]) : 1;
    if (ty === CONTROL || ty === USER_DEFINED) {
      added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: ty === USER_DEFINED, special: ty === CONTROL });
    }
  }
  for (const [i, m] of merges.entries()) {
    if (typeof m !== 'string' || m.indexOf(' ', 1) < 0) throw new ModelFormatError(`${label}: merge ${i} is not two symbols separated by a space.`);
  }
  const bos = tokenId(meta, 'tokenizer.ggml.bos_token_id', n);
  const eos = tokenId(meta, 'tokenizer.ggml.eos_token_id', n);
  const tokenizerJson = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...pre.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: typeof meta['tokenizer.ggml.add_bos_token'] === 'boolean' ? meta['tokenizer.ggml.add_bos_token'] : pre.addBos,
    bos_token: bos !== null ? tokens[bos] : null,
    eos_token: eos !== null ? tokens[eos] : null,
  };
  return { tokenizerJson, tokenizerConfig };
}

/** A tokenizer for a GGUF byte-level BPE vocabulary, through @huggingface/tokenizers (see ggufBpeTokenizerJson). */
export function createGgufBpeTokenizer(meta: Metadata, label = 'GGUF vocabulary'): HfTokenizerAdapter {
  const { tokenizerJson, tokenizerConfig } = ggufBpeTokenizerJson(meta, label);
  const eot = tokenId(meta, 'tokenizer.ggml.eot_token_id', (meta['tokenizer.ggml.tokens'] as unknown[]).length);
  return new HfTokenizerAdapter(tokenizerJson, tokenizerConfig, { eosTokenIds: eot !== null ? [eot] : [] });
}
