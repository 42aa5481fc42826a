// `forklm serve`: the OpenAI-compatible HTTP server (serve/server.ts) over one model, until SIGINT or SIGTERM.
import { readFileSync } from 'node:fs';
import { loadEngine } from '../engine_load.js';
import { InvalidArgumentError } from '../errors.js';
import { serve } from '../serve/server.js';
import { defineCommand } from './args.js';
import { WEIGHTS_FLAG } from './weights_flag.js';

export const serveFlags = {
  model: { type: 'string', default: 'stories260K', placeholder: 'name|path|url', description: 'Model name, HF folder, .gguf or llama2.c .bin' },
  weights: WEIGHTS_FLAG,
  host: { type: 'string', default: '127.0.0.1', description: 'Interface to bind (0.0.0.0 serves other machines too)' },
  port: { type: 'integer', default: 8080, min: 0, max: 65535, description: 'Port (0: any free one)' },
  chatTemplate: { type: 'string', placeholder: 'file', description: "A Jinja chat template file, for models that ship none (or to replace the model's)" },
  maxBodyBytes: { type: 'integer', default: 1 << 20, min: 1, description: 'Largest request body in bytes' },
  maxRequestTokens: { type: 'integer', default: 65_536, min: 1, description: 'Most tokens one request may generate (n * max_tokens)' },
} as const;

export const serveCommand = defineCommand({
  summary: 'Serve a model over HTTP with the OpenAI API (/v1/completions, /v1/chat/completions, /v1/models, /health)',
  details:
    'Examples:\n  forklm serve --model stories260K --port 8080\n' +
    '  curl localhost:8080/v1/completions -d \'{"prompt": "Once upon a time", "n": 4, "max_tokens": 32}\'\n' +
    'Concurrent requests share the engine\'s steps; a client that disconnects frees its request\'s pages.',
  flags: serveFlags,
  async run({ flags }, ctx) {
    let template: string | null = null;
    if (flags.chatTemplate !== undefined) {
      try {
        template = readFileSync(flags.chatTemplate, 'utf8');
      } catch (e) {
        throw new InvalidArgumentError(`--chat-template: cannot read ${flags.chatTemplate} (${(e as Error).message}).`);
      }
    }
    const engine = await loadEngine(flags.model, { weights: flags.weights, ...(template !== null ? { chatTemplate: { template, bosToken: null, eosToken: null } } : {}) });
    const running = await serve(engine, {
      host: flags.host,
      port: flags.port,
      maxBodyBytes: flags.maxBodyBytes,
      maxRequestTokens: flags.maxRequestTokens,
    });
    ctx.stdout(`forklm serve: ${engine.modelName} on ${running.url}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await running.close();
    engine.destroy();
    return 0;
  },
});
