// Chat prompts through the model's own Jinja chat template (@huggingface/jinja), as transformers'
// apply_chat_template renders them. The template comes from tokenizer_config.json `chat_template` or from GGUF
// metadata `tokenizer.chat_template`; a model without one gets NoChatTemplateError when a chat is requested, never a
// made-up format.
//
// Encoding a chat (encodeChat): the special tokens the template writes become token ids; the messages' contents stay
// text even when they spell a special token ("</s>", "<|im_end|>"), so a user message cannot close its turn or forge
// another. Most runtimes render the template and tokenize the whole string with special-token parsing on, which turns
// such content into control tokens. Here the template is rendered twice, once with the contents and once with a unique
// placeholder for each, and the placeholders say where each content sits in the rendered text; special-token text is
// matched only outside those spans, and the text on either side of a content is encoded together with it (the same
// tokens as one string, as transformers' apply_chat_template(tokenize=True) gives when no content spells a special
// token).
import { Template } from '@huggingface/jinja';
import { splitSpecial, type PromptPart, type Tokenizer } from './types.js';
import { InvalidArgumentError, ModelFormatError, NoChatTemplateError } from '../errors.js';

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
 * Token ids of an already rendered prompt whose every special-token text is meant as a token ("<|im_start|>", "<s>"):
 * only for text the caller trusts whole (message contents spelling a special token would become that token; use
 * encodeChat for chats). BOS is added only when the text does not start with it.
 */
export function encodeChatPrompt(tokenizer: Tokenizer, text: string, bosToken: string | null): number[] {
  const addBos = !(bosToken !== null && bosToken.length > 0 && text.startsWith(bosToken));
  return tokenizer.encode(text, { addBos, parseSpecial: true });
}

/**
 * Token ids of `messages` rendered with `template`: the template's own special-token text becomes those tokens, the
 * messages' contents stay text whatever they spell. BOS is added (when the tokenizer adds one) only if the template
 * did not write it. A template that transforms a content beyond trimming whitespace (so the rendered content cannot
 * be found) has that content and everything up to the template's next text encoded as text.
 */
export function encodeChat(tokenizer: Tokenizer, template: string, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
  const text = applyChatTemplate(template, messages, options);
  const nonce = Array.from(crypto.getRandomValues(new Uint32Array(2)), (w) => w.toString(16).padStart(8, '0')).join('');
  const marker = (i: number) => `\ufdd0${nonce}:${i}\ufdd1`;
  const skeleton = applyChatTemplate(template, messages.map((m, i) => ({ ...m, content: marker(i) })), options);
  // skeleton = t0 m(j0) t1 m(j1) ... tn: template text and, between, the content of message j.
  const pieces = skeleton.split(new RegExp(`\ufdd0${nonce}:(\\d+)\ufdd1`, 'u'));
  const spans: { text: string; content: boolean }[] = [];
  let pos = 0;
  let lost = false; // a content could not be located: the rest is text
  for (let k = 0; k < pieces.length && !lost; k += 2) {
    const t = pieces[k];
    if (!text.startsWith(t, pos)) {
      lost = true;
      break;
    }
    spans.push({ text: t, content: false });
    pos += t.length;
    if (k + 1 >= pieces.length) break;
    const c = messages[Number(pieces[k + 1])].content;
    const next = pieces[k + 2];
    const fits = (s: string) => text.startsWith(s, pos) && text.startsWith(next, pos + s.length);
    const found = [c, c.trim(), c.trimStart(), c.trimEnd()].find(fits);
    if (found !== undefined) {
      spans.push({ text: found, content: true });
      pos += found.length;
    } else {
      const end = next.length > 0 ? text.indexOf(next, pos) : -1;
      if (end < 0) {
        lost = true;
        break;
      }
      spans.push({ text: text.slice(pos, end), content: true });
      pos = end;
    }
  }
  if (lost || pos < text.length) spans.push({ text: text.slice(pos), content: true });
  const parts: PromptPart[] = [];
  for (const s of spans) {
    for (const p of s.content ? [s.text] : splitSpecial(s.text, tokenizer.specialTokens)) {
      const last = parts.length - 1;
      if (typeof p === 'string' && last >= 0 && typeof parts[last] === 'string') parts[last] += p;
      else if (p !== '') parts.push(p);
    }
  }
  const wroteBos = tokenizer.bosTokenId !== null && parts[0] === tokenizer.bosTokenId;
  return tokenizer.encodeParts(parts, { addBos: !wroteBos });
}
