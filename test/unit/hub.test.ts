// Models by hub id against a local HTTP server that lays out ../shared/fixtures/arch and stories260K as the Hugging
// Face hub does (/<owner>/<name>/resolve/<revision>/<file>, X-Linked-Size and X-Linked-Etag = sha256 on weight files).
// The server counts requests: a second load comes from the cache with none. Corrupt and partial downloads are typed
// errors and are not cached.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../../src/engine_load.js';
import { ChecksumError, ModelNotFoundError } from '../../src/errors.js';
import { parseHubId, type HubProgress } from '../../src/io/hub.js';
import type { LoadedModel } from '../../src/model/load.js';
import { sharedModelsDir } from '../ref/shared_models.js';

const fixtures = join(sharedModelsDir(), '../fixtures/arch');
/** Repositories the server holds: id -> folder. */
const repos: Record<string, string> = {
  'fixtures/llama': join(fixtures, 'llama'),
  'fixtures/qwen2-bias': join(fixtures, 'qwen2-bias'),
  'karpathy/stories260K': join(sharedModelsDir(), 'stories260K/hf'),
  'karpathy/stories260K-gguf': join(sharedModelsDir(), 'stories260K/gguf'),
};

let server: Server;
let base: string;
const requests: string[] = [];
/** Faults to inject, by path: 'corrupt' flips a byte (headers still promise the original), 'partial' stops halfway. */
const faults = new Map<string, 'corrupt' | 'partial'>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const dir = m ? repos[m[1]] : undefined;
    const file = m ? join(dir ?? '', decodeURIComponent(m[3])) : '';
    if (!m || !dir || m[2] !== 'main' || !existsSync(file)) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const bytes = readFileSync(file);
    const headers: Record<string, string> = { 'content-length': String(bytes.length) };
    // The hub stores weights in LFS: their responses name the sha256 and size of the file.
    if (/\.(safetensors|gguf)$/.test(file)) {
      headers['x-linked-etag'] = `"${createHash('sha256').update(bytes).digest('hex')}"`;
      headers['x-linked-size'] = String(bytes.length);
    }
    const fault = faults.get(url);
    res.writeHead(200, headers);
    if (fault === 'partial') {
      res.write(bytes.subarray(0, bytes.length >> 1));
      res.destroy();
      return;
    }
    if (fault === 'corrupt') {
      const copy = Buffer.from(bytes);
      copy[copy.length >> 1] ^= 0xff;
      res.end(copy);
      return;
    }
    res.end(bytes);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

const sameWeights = (a: LoadedModel, b: LoadedModel) => {
  expect(b.config).toEqual(a.config);
  expect(Buffer.from(b.weights.embed.buffer, b.weights.embed.byteOffset, b.weights.embed.byteLength).equals(
    Buffer.from(a.weights.embed.buffer, a.weights.embed.byteOffset, a.weights.embed.byteLength),
  )).toBe(true);
  expect(b.weights.layers.length).toBe(a.weights.layers.length);
  expect(Array.from(b.weights.layers.at(-1)!.wo.subarray(0, 64))).toEqual(Array.from(a.weights.layers.at(-1)!.wo.subarray(0, 64)));
};

describe('models by hub id', () => {
  it('parses hub ids and leaves everything else alone', () => {
    expect(parseHubId('HuggingFaceTB/SmolLM2-135M-Instruct')).toEqual({ owner: 'HuggingFaceTB', name: 'SmolLM2-135M-Instruct', revision: 'main', file: null });
    expect(parseHubId('owner/name/sub/model-Q4_K.gguf@v1.0')).toEqual({ owner: 'owner', name: 'name', revision: 'v1.0', file: 'sub/model-Q4_K.gguf' });
    for (const s of ['stories260K', 'owner/name/weights.bin', '../x/y', '/abs/path', 'https://x/y', 'owner/na me']) expect(parseHubId(s)).toBeNull();
  });

  it.each(['fixtures/llama', 'fixtures/qwen2-bias', 'karpathy/stories260K'])(
    '%s: the same model as its folder; the second load makes no request',
    async (id) => {
      const cache = mkdtempSync(join(tmpdir(), 'forklm-hub-'));
      const events: HubProgress[] = [];
      const n0 = requests.length;
      const viaHub = await readModel(id, { hub: { baseUrl: base, cache, onProgress: (p) => events.push(p) } });
      const first = requests.slice(n0);
      expect(first.every((r) => r.startsWith(`/${id}/resolve/main/`))).toBe(true);
      expect(first).toContain(`/${id}/resolve/main/model.safetensors`);
      sameWeights(await readModel(repos[id]), viaHub);
      // Progress: bytes of the weights up to their size, and a growing count of finished files.
      const weights = events.filter((e) => e.file === 'model.safetensors');
      expect(weights.at(-1)!.loaded).toBe(weights.at(-1)!.total);
      expect(Math.max(...events.map((e) => e.filesDone))).toBeGreaterThanOrEqual(2);
      const n1 = requests.length;
      const again = await readModel(id, { hub: { baseUrl: base, cache, onProgress: (p) => events.push(p) } });
      expect(requests.length).toBe(n1); // zero requests: files and known-missing files all from the cache
      sameWeights(viaHub, again);
      expect(events.at(-1)!.cached).toBe(true);
    },
  );

  it('owner/name/file.gguf loads one GGUF file', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'forklm-hub-'));
    const m = await readModel('karpathy/stories260K-gguf/stories260K.gguf', { hub: { baseUrl: base, cache } });
    expect(m.config.vocabSize).toBe(512);
    expect(m.tokenizer?.kind).toBe('gguf');
  });

  it('a corrupt or partial download is a typed error and is not cached', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'forklm-hub-'));
    const path = '/fixtures/llama/resolve/main/model.safetensors';
    const opts = { hub: { baseUrl: base, cache } };
    faults.set(path, 'corrupt');
    await expect(readModel('fixtures/llama', opts)).rejects.toBeInstanceOf(ChecksumError);
    faults.set(path, 'partial');
    await expect(readModel('fixtures/llama', opts)).rejects.toBeInstanceOf(ModelNotFoundError);
    faults.delete(path);
    const n0 = requests.length;
    await readModel('fixtures/llama', opts); // downloads the weights again: the bad copies were never kept
    expect(requests.slice(n0)).toContain(path);
  });

  it('an unknown repository is a ModelNotFoundError', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'forklm-hub-'));
    await expect(readModel('nobody/nothing', { hub: { baseUrl: base, cache } })).rejects.toBeInstanceOf(ModelNotFoundError);
  });
});
