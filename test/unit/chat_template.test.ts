// Chat templates: stories260K has none (a chat request is NoChatTemplateError); a small ChatML-like template checks
// rendering, generation prompts, named template lists, template errors, and that the rendered prompt's special-token
// text becomes single tokens with BOS added exactly once.
import { sharedModelsDir } from '../ref/shared_models.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gguf } from '@huggingface/gguf';
import {
  applyChatTemplate,
  encodeChatPrompt,
  findChatTemplate,
  requireChatTemplate,
  type ChatMessage,
} from '../../src/tokenizer/chat.js';
import { createHfTokenizer } from '../../src/tokenizer/hf.js';
import { createGgufTokenizer } from '../../src/tokenizer/gguf_vocab.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { InvalidArgumentError, ModelFormatError, NoChatTemplateError } from '../../src/errors.js';

const DIR = `${sharedModelsDir()}/stories260K`;
const tokenizerJson = JSON.parse(readFileSync(`${DIR}/hf/tokenizer.json`, 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(`${DIR}/hf/tokenizer_config.json`, 'utf8'));

const CHATML =
  '{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}' +
  '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

const STRICT =
  "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}" +
  '[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'A story about Lily, please.' },
];

describe('chat templates', () => {
  it('stories260K has no template: a chat request is NoChatTemplateError', async () => {
    expect(findChatTemplate({ tokenizerConfig })).toBeNull();
    expect(() => requireChatTemplate({ tokenizerConfig }, 'stories260K')).toThrow(NoChatTemplateError);
    expect(() => requireChatTemplate({ tokenizerConfig }, 'stories260K')).toThrow(/stories260K has no chat template/);
    const meta = (await gguf(`${DIR}/gguf/stories260K.gguf`, { allowLocalFile: true })).metadata as Record<string, unknown>;
    expect(findChatTemplate({ ggufMetadata: meta })).toBeNull();
    expect(loadTokenizer({ tokenizerJson, tokenizerConfig }).chatTemplate).toBeNull();
  });

  it('finds templates in tokenizer_config (string or named list) and GGUF metadata', () => {
    expect(findChatTemplate({ tokenizerConfig: { chat_template: CHATML } })).toBe(CHATML);
    const list = [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D' },
    ];
    expect(findChatTemplate({ tokenizerConfig: { chat_template: list } })).toBe('D');
    expect(findChatTemplate({ tokenizerConfig: { chat_template: [list[0]] } })).toBe('T');
    expect(findChatTemplate({ ggufMetadata: { 'tokenizer.chat_template': 'G' } })).toBe('G');
    const withTemplate = loadTokenizer({ tokenizerJson, tokenizerConfig: { ...tokenizerConfig, chat_template: CHATML } });
    expect(withTemplate.chatTemplate).toBe(CHATML);
  });

  it('renders a ChatML-like template with and without the generation prompt', () => {
    const body =
      '<|im_start|>system\nYou tell short stories.<|im_end|>\n<|im_start|>user\nA story about Lily, please.<|im_end|>\n';
    expect(applyChatTemplate(CHATML, messages, { bos_token: '<s>' })).toBe(`<s>${body}`);
    expect(applyChatTemplate(CHATML, messages, { bos_token: '<s>', add_generation_prompt: true })).toBe(
      `<s>${body}<|im_start|>assistant\n`,
    );
    expect(applyChatTemplate(CHATML, [], {})).toBe('');
  });

  it('turns template exceptions and syntax errors into typed errors', () => {
    const ok = applyChatTemplate(STRICT, [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ], { eos_token: '</s>' });
    expect(ok).toBe('[user] hi</s>[assistant] hello</s>');
    expect(() =>
      applyChatTemplate(STRICT, [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]),
    ).toThrow(InvalidArgumentError);
    expect(() => applyChatTemplate('{% for m in messages %}{{ m.content }', messages)).toThrow(ModelFormatError);
    expect(() => applyChatTemplate(CHATML, [{ role: 'user' } as unknown as ChatMessage])).toThrow(InvalidArgumentError);
  });

  it('encodes a rendered prompt with one BOS and special-token text as tokens', async () => {
    const hf = createHfTokenizer(tokenizerJson, tokenizerConfig);
    const template = '{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}';
    const text = applyChatTemplate(template, messages, { bos_token: '<s>', eos_token: '</s>' });
    const ids = encodeChatPrompt(hf, text, '<s>');
    expect(ids.filter((id) => id === 1)).toEqual([1]);
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 2)).toEqual([2, 2]);
    // Without the BOS in the template, encodeChatPrompt adds it.
    const noBos = applyChatTemplate(template, messages, { bos_token: '', eos_token: '</s>' });
    expect(encodeChatPrompt(hf, noBos, '<s>')).toEqual(ids);
    // The GGUF tokenizer spells "</s>" out in encode but matches it in a chat prompt, giving the same ids.
    const meta = (await gguf(`${DIR}/gguf/stories260K.gguf`, { allowLocalFile: true })).metadata as Record<string, unknown>;
    expect(encodeChatPrompt(createGgufTokenizer(meta), text, '<s>')).toEqual(ids);
  });
});
