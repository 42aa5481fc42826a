// Models by hub id in Chromium: the page loads stories260K and three arch fixtures through the hub loader from a local
// server in the hub's URL layout (hub_server.ts) with the Cache API as the cache. A first load downloads and checks
// every file; a second load makes zero requests (counted by the server) and gives the same weights as the files read
// straight from disk. A download with the wrong sha256, the wrong size or a cut-off body is a typed error and is not
// cached (the next load asks the server again). A worker engine loads from the same cache with zero requests.
import { widenWeights } from '../../src/model/widen.js';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ChecksumError, ModelNotFoundError, createWorkerEngine, readModel, type LoadedModel } from '../../src/index.js';
import { loadModel } from '../../src/model/load.js';
import type { HubProgress } from '../../src/io/hub.js';

declare const __FORKLM_SHARED_MODELS__: string;
const HUB = inject('hubUrl');
// A cache of this run only (the browser profile is fresh per run anyway).
const CACHE = `forklm-hub-test-${Date.now()}`;
const disk = (rel: string) => new URL(`/@fs${__FORKLM_SHARED_MODELS__}/${rel}`, location.origin).href;

async function served(): Promise<string[]> {
  return (await fetch(`${HUB}/__requests`)).json();
}
async function reset(): Promise<void> {
  await fetch(`${HUB}/__reset`);
}
function load(repo: string, progress: HubProgress[] = []): Promise<LoadedModel> {
  return readModel(`forklm-test/${repo}`, { hub: { baseUrl: HUB, cache: CACHE, onProgress: (p) => progress.push(p) } });
}

afterAll(async () => {
  await caches.delete(CACHE);
});

const REPOS: [string, string][] = [
  ['stories260K', 'stories260K/hf/'],
  ['arch-gemma3', '../fixtures/arch/gemma3/'],
  ['arch-qwen3-qknorm-headdim', '../fixtures/arch/qwen3-qknorm-headdim/'],
  ['arch-gpt2', '../fixtures/arch/gpt2/'],
];

describe('hub loader in Chromium with the Cache API', () => {
  it.each(REPOS)('%s: the second load makes zero requests and both equal the files on disk', async (repo, rel) => {
    await reset();
    const p1: HubProgress[] = [];
    const first = await load(repo, p1);
    const asked = await served();
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(asked).toContain(`/forklm-test/${repo}/resolve/main/${f}`);
    expect(p1.every((p) => !p.cached)).toBe(true);

    const direct = await loadModel(disk(rel));
    expect(first.spec).toEqual(direct.spec);
    // Matrices are read lazily as stored (bytes() closures): compare their values.
    const want = widenWeights(direct.modelWeights);
    expect(widenWeights(first.modelWeights)).toEqual(want);

    await reset();
    const p2: HubProgress[] = [];
    const second = await load(repo, p2);
    expect(await served(), 'requests of the second load').toEqual([]);
    expect(p2.length).toBeGreaterThan(0);
    expect(p2.every((p) => p.cached && p.loaded === p.total)).toBe(true);
    expect(second.spec).toEqual(direct.spec);
    expect(widenWeights(second.modelWeights)).toEqual(want);
    expect(second.tokenizer?.kind).toBe('hf');
  });

  it.each([
    ['bad-hash', ChecksumError, /sha256 .* but the hub says/],
    ['bad-size', ModelNotFoundError, /ended after \d+ of \d+ bytes/],
    ['partial', ModelNotFoundError, /broke off after \d+ bytes|ended after/],
  ] as const)('%s: a typed error, and nothing is cached', async (repo, Cls, message) => {
    const weights = `/forklm-test/${repo}/resolve/main/model.safetensors`;
    for (let attempt = 0; attempt < 2; attempt++) {
      await reset();
      const err = await load(repo).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Cls);
      expect((err as Error).message).toMatch(message);
      // Asked again on the second attempt: the bad download was not cached.
      expect(await served(), `attempt ${attempt}`).toContain(weights);
    }
  });

  it('a worker engine loads by hub id from the same cache with zero requests, and rethrows a bad download as ChecksumError', async () => {
    await load('stories260K');
    await reset();
    const engine = await createWorkerEngine('forklm-test/stories260K', { hub: { baseUrl: HUB, cache: CACHE }, kvPages: 32 });
    try {
      expect(await served()).toEqual([]);
      const r = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
      expect(r.choices[0].text.length).toBeGreaterThan(0);
    } finally {
      await engine.destroy();
    }
    const err = await createWorkerEngine('forklm-test/bad-hash', { hub: { baseUrl: HUB, cache: CACHE } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
  });
});
