// What the OpenAI-style API needs from an engine: sessions, a tokenizer, the engine's limits, a model name and the
// chat template. The local Engine provides it; anything else that opens sessions (a RemoteEngine) can too.
import type { EngineInfo, SessionSource } from '../branch/engine_api.js';
import type { Tokenizer } from '../tokenizer/types.js';

export interface ChatTemplateInfo {
  /** Jinja source (tokenizer_config.json `chat_template`, GGUF `tokenizer.chat_template`, or given); null: none. */
  template: string | null;
  bosToken: string | null;
  eosToken: string | null;
}

export interface ApiHost extends SessionSource {
  readonly info: EngineInfo;
  readonly tokenizer: Tokenizer | null;
  /** The name responses carry in `model`. */
  readonly modelName: string;
  /** The model's chat template and BOS/EOS text (a request may bring its own template: `chat_template`). */
  readonly chatTemplate: ChatTemplateInfo;
}
