// Chat prompts through the model's own Jinja chat template (@huggingface/jinja), as transformers'
// apply_chat_template renders them. The template comes from tokenizer_config.json `chat_template` or from GGUF
// metadata `tokenizer.chat_template`; a model without one gets NoChatTemplateError when a chat is requested, never a
// made-up format.
import { Template } from '@huggingface/jinja';
import type { Tokenizer } from './types.js';
import { InvalidArgumentError, ModelFormatError, NoChatTemplateError } from '../errors.js';
import { SentencePieceBpe } from './sentencepiece_bpe.js';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  bos_token?: string | null;
  eos_token?: string | null;
  /** Append the assistant turn opener so the model answers rather than continues the last message. */
  add_generation_prompt?: boolean;
  /** Further template variables (e.g. `tools`, `date_string`). */
  [name: string]: unknown;
}

/** Where a model's chat template can be: parsed tokenizer_config.json and/or GGUF metadata. */
export interface ChatTemplateSource {
  tokenizerConfig?: Readonly<Record<string, unknown>>;
  ggufMetadata?: Readonly<Record<string, unknown>>;
}

/**
 * The model's chat template, or null. tokenizer_config.json may hold a list of named templates
 * (`[{ name, template }]`): the one named "default" wins, else the first.
 */
export function findChatTemplate(source: ChatTemplateSource): string | null {
  const t = source.tokenizerConfig?.chat_template;
  if (typeof t === 'string' && t.length > 0) return t;
  if (Array.isArray(t)) {
    const named = t.filter(
      (x): x is { name?: unknown; template: string } =>
        x !== null && typeof x === 'object' && typeof (x as { template?: unknown }).template === 'string',
    );
    const chosen = named.find((x) => x.name === 'default') ?? named[0];
    if (chosen !== undefined) return chosen.template;
  }
  const g = source.ggufMetadata?.['tokenizer.chat_template'];
  if (typeof g === 'string' && g.length > 0) return g;
  return null;
}

/** The model's chat template; NoChatTemplateError when it has none. */
export function requireChatTemplate(source: ChatTemplateSource, modelName = 'this model'): string {
  const t = findChatTemplate(source);
  if (t === null) {
    throw new NoChatTemplateError(
      `${modelName} has no chat template (no chat_template in tokenizer_config.json or tokenizer.chat_template in ` +
        `the GGUF file), so it cannot take chat messages. Pass a plain text prompt instead, or supply a template.`,
    );
  }
  return t;
}

const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (t === undefined) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new ModelFormatError(
        `The chat template does not parse as Jinja (${(e as Error).message}); fix or replace the model's chat_template.`,
        { cause: e },
      );
    }
    compiled.set(template, t);
  }
  return t;
}

/** Renders `messages` with `template` to the prompt text, like transformers' apply_chat_template(tokenize=False). */
export function applyChatTemplate(template: string, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  for (const [i, m] of messages.entries()) {
    if (m === null || typeof m !== 'object' || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new InvalidArgumentError(`Chat message ${i} must be { role: string, content: string }.`);
    }
  }
  const t = compile(template);
  try {
    return t.render({
      ...options,
      messages: messages.map((m) => ({ ...m })),
      bos_token: options.bos_token ?? '',
      eos_token: options.eos_token ?? '',
      add_generation_prompt: options.add_generation_prompt ?? false,
    });
  } catch (e) {
    // Templates reject bad conversations with raise_exception ("roles must alternate user/assistant/...").
    throw new InvalidArgumentError(`The chat template rejected these messages: ${(e as Error).message}`);
  }
}

/**
 * Token ids of a rendered chat prompt. Special-token text the template wrote ("<|im_start|>", "<s>") becomes those
 * tokens; BOS is added only when the template did not already write it.
 */
export function encodeChatPrompt(tokenizer: Tokenizer, text: string, bosToken: string | null): number[] {
  const addBos = !(bosToken !== null && bosToken.length > 0 && text.startsWith(bosToken));
  // HF tokenizers always match added tokens in text; the SentencePiece ones do so only when asked.
  if (tokenizer instanceof SentencePieceBpe) return tokenizer.encodeWithSpecialTokens(text, { addBos });
  return tokenizer.encode(text, { addBos });
}
