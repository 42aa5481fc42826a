// resolveModel: names through cache -> local folders -> download (a local fetch stub; no network in tests), paths,
// URLs, checksum failures, and the manifest itself.
import { sharedModelsDir } from '../ref/shared_models.js';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChecksumError, ModelFormatError, ModelNotFoundError } from '../../src/errors.js';
import { sha256Hex, verifySha256 } from '../../src/io/sha256.js';
import type { ByteProgress } from '../../src/io/source.js';
import { loadModel } from '../../src/model/load.js';
import {
  MANIFESTS,
  defaultCacheDir,
  findManifest,
  knownModelNames,
  localModelDirs,
  packageRoot,
  resolveModel,
  validateManifest,
} from '../../src/model/resolve.js';

const shared = sharedModelsDir();
const temp = mkdtempSync(join(tmpdir(), 'forklm-resolve-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(temp, `c${n++}`);
  mkdirSync(d);
  return d;
};
const manifest = MANIFESTS[0];

/** A fetch that serves the shared files at their manifest URLs, counting requests. */
function stubFetch(corrupt = false) {
  const byUrl = new Map<string, string>();
  for (const f of Object.values(manifest.formats)) {
    for (const file of f.files) if (file.url) byUrl.set(file.url, join(shared!, 'stories260K', f.dir, file.name));
  }
  const calls: string[] = [];
  const fetchFn = (async (url: string) => {
    calls.push(url);
    const p = byUrl.get(url);
    if (!p) return new Response('not found', { status: 404 });
    const b = new Uint8Array(readFileSync(p));
    if (corrupt) b[b.length >> 1] ^= 1;
    return new Response(b, { headers: { 'content-length': String(b.length) } });
  }) as unknown as typeof fetch;
  return { fetchFn, calls };
}

describe('the stories260K manifest', () => {
  it('is valid, known by name (any case), and prefers HF', () => {
    expect(knownModelNames()).toContain('stories260K');
    expect(findManifest('STORIES260k')?.name).toBe('stories260K');
    expect(manifest.prefer[0]).toBe('hf');
    expect(manifest.formats.hf?.files.every((f) => f.url === null)).toBe(true);
    expect(manifest.formats.llama2c?.files.map((f) => f.url)).toEqual([
      'https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/stories260K.bin',
      'https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/tok512.bin',
    ]);
    expect(manifest.formats.gguf?.files[0].url).toBe('https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf');
  });

  it('agrees with the shared files and the hashes their README publishes', async () => {
    const readme = readFileSync(join(shared!, 'README.md'), 'utf8');
    for (const f of Object.values(manifest.formats)) {
      for (const file of f.files) {
        const bytes = readFileSync(join(shared!, 'stories260K', f.dir, file.name));
        expect(bytes.length, file.name).toBe(file.size);
        expect(await sha256Hex(bytes), file.name).toBe(file.sha256);
        const line = readme.split('\n').find((l) => l.endsWith(`${f.dir}/${file.name}`));
        if (line) expect(line.split(/\s+/)[0]).toBe(file.sha256);
      }
    }
  });

  const base = { name: 'm', formats: { gguf: { dir: 'g', entry: 'm.gguf', files: [{ name: 'm.gguf', size: 1, sha256: 'a'.repeat(64), url: 'https://x/m.gguf' }] } } };
  const broken: [string, unknown, RegExp][] = [
    ['a URL without a sha256', { ...base, formats: { gguf: { ...base.formats.gguf, files: [{ name: 'm.gguf', size: 1, sha256: null, url: 'https://x' }] } } }, /no sha256/],
    ['a malformed sha256', { ...base, formats: { gguf: { ...base.formats.gguf, files: [{ name: 'm.gguf', size: 1, sha256: 'xyz', url: null }] } } }, /not 64 hex digits/],
    ['an entry that is not a file', { ...base, formats: { gguf: { ...base.formats.gguf, entry: 'other.gguf' } } }, /entry "other.gguf" is not among its files/],
    ['an unknown format', { ...base, formats: { onnx: base.formats.gguf } }, /format "onnx"/],
    ['a path in a file name', { ...base, formats: { gguf: { ...base.formats.gguf, files: [{ name: '../m.gguf', size: 1, sha256: null, url: null }] } } }, /plain file name/],
    ['a plain-http URL', { ...base, formats: { gguf: { ...base.formats.gguf, files: [{ name: 'm.gguf', size: 1, sha256: 'a'.repeat(64), url: 'http://x' }] } } }, /not an https URL/],
    ['a preference for a missing format', { ...base, prefer: ['hf'] }, /"prefer" names format "hf"/],
  ];
  it.each(broken)('rejects a manifest with %s', (_what, json, message) => {
    expect(() => validateManifest(json, 'm.json')).toThrow(ModelFormatError);
    expect(() => validateManifest(json, 'm.json')).toThrow(message);
  });
});

describe('where models are looked for', () => {
  it('finds the package root from the module URL and ../shared/models next to it', async () => {
    const root = await packageRoot();
    expect(root).toBe(resolvePath(import.meta.dirname, '..', '..'));
    const dirs = await localModelDirs();
    if (existsSync(resolvePath(root!, '..', 'shared', 'models'))) expect(dirs).toContain(resolvePath(root!, '..', 'shared', 'models'));
  });

  it('honours FORKLM_MODELS and FORKLM_CACHE', async () => {
    const saved = { m: process.env.FORKLM_MODELS, c: process.env.FORKLM_CACHE };
    const a = freshDir();
    try {
      process.env.FORKLM_MODELS = a;
      process.env.FORKLM_CACHE = join(temp, 'env-cache');
      expect((await localModelDirs())[0]).toBe(a);
      expect(await defaultCacheDir()).toBe(join(temp, 'env-cache'));
    } finally {
      for (const [k, v] of [['FORKLM_MODELS', saved.m], ['FORKLM_CACHE', saved.c]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('resolveModel by name', () => {
  const local = { modelDirs: [shared!] };

  it('uses the local folder, HF first, and honours a requested format', async () => {
    const cacheDir = freshDir();
    const hf = await resolveModel('stories260K', { ...local, cacheDir });
    expect(hf).toEqual({ name: 'stories260K', format: 'hf', path: join(shared!, 'stories260K', 'hf'), from: 'local' });
    const l2c = await resolveModel('stories260K', { ...local, cacheDir, format: 'llama2c' });
    expect(l2c.path).toBe(join(shared!, 'stories260K', 'llama2c', 'stories260K.bin'));
    const gguf = await resolveModel('stories260K', { ...local, cacheDir, format: 'gguf' });
    expect(gguf.path).toBe(join(shared!, 'stories260K', 'gguf', 'stories260K.gguf'));
    expect((await loadModel(l2c.path)).format).toBe('llama2c');
  });

  it('prefers the cache to local folders, and names a corrupt cached file with what to do', async () => {
    const cacheDir = freshDir();
    const cached = join(cacheDir, 'stories260K', 'llama2c');
    mkdirSync(cached, { recursive: true });
    cpSync(join(shared!, 'stories260K', 'llama2c'), cached, { recursive: true });
    const r = await resolveModel('stories260K', { ...local, cacheDir });
    expect(r).toMatchObject({ from: 'cache', format: 'llama2c' });
    const tok = join(cached, 'tok512.bin');
    const bytes = readFileSync(tok);
    bytes[100] ^= 0xff;
    writeFileSync(tok, bytes);
    const e = await resolveModel('stories260K', { ...local, cacheDir }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(ChecksumError);
    const msg = (e as Error).message;
    expect(msg).toContain(tok);
    expect(msg).toContain(`expected ${manifest.formats.llama2c!.files[1].sha256}`);
    expect(msg).toMatch(/sha256 is [0-9a-f]{64}/);
    expect(msg).toMatch(/delete it/);
    // without verification the corrupt file is handed on (the caller asked for speed over safety)
    expect((await resolveModel('stories260K', { ...local, cacheDir, verify: false })).from).toBe('cache');
  });

  it('downloads into the cache through fetch when nothing is local, checking sha256, then reuses the cache', async () => {
    const cacheDir = freshDir();
    const { fetchFn, calls } = stubFetch();
    const progress: ByteProgress[] = [];
    const r = await resolveModel('stories260K', { cacheDir, modelDirs: [], fetch: fetchFn, onProgress: (p) => progress.push(p) });
    // HF has no public URL, so the next preferred format is fetched
    expect(r).toEqual({ name: 'stories260K', format: 'llama2c', path: join(cacheDir, 'stories260K', 'llama2c', 'stories260K.bin'), from: 'download' });
    expect(calls.length).toBe(2);
    expect(readdirSync(join(cacheDir, 'stories260K', 'llama2c')).sort()).toEqual(['stories260K.bin', 'tok512.bin']);
    expect(progress.at(-1)).toMatchObject({ loaded: 6227, total: 6227 });
    expect((await loadModel(r.path)).tokenizer?.kind).toBe('llama2c');
    const again = await resolveModel('stories260K', { cacheDir, modelDirs: [], fetch: fetchFn });
    expect(again.from).toBe('cache');
    expect(calls.length).toBe(2);
  });

  it('never caches a corrupt download, and reports 404s and missing formats', async () => {
    const cacheDir = freshDir();
    const bad = stubFetch(true);
    const e = await resolveModel('stories260K', { cacheDir, modelDirs: [], fetch: bad.fetchFn, format: 'gguf' }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(ChecksumError);
    expect((e as Error).message).toContain('expected 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
    expect(existsSync(join(cacheDir, 'stories260K', 'gguf', 'stories260K.gguf'))).toBe(false);
    const none = (async () => new Response('', { status: 404 })) as unknown as typeof fetch;
    await expect(resolveModel('stories260K', { cacheDir, modelDirs: [], fetch: none })).rejects.toThrow(/not found \(404\)/);
    await expect(resolveModel('stories260K', { cacheDir, modelDirs: [], download: false })).rejects.toThrow(/is not in .*downloading is off/);
    await expect(resolveModel('stories260K', { cacheDir, modelDirs: [], format: 'hf' })).rejects.toThrow(/none of these formats has a public URL/);
  });
});

describe('resolveModel by path or URL', () => {
  it('passes paths and URLs through, and lists known names for anything else', async () => {
    const dir = freshDir();
    const file = join(dir, 'x.gguf');
    writeFileSync(file, 'GGUF');
    expect(await resolveModel(dir)).toEqual({ name: null, format: null, path: dir, from: 'path' });
    expect(await resolveModel(file)).toMatchObject({ format: 'gguf', from: 'path' });
    expect(await resolveModel('https://example.invalid/m.gguf')).toMatchObject({ from: 'url' });
    await expect(resolveModel('tinyllama-999')).rejects.toThrow(ModelNotFoundError);
    await expect(resolveModel('tinyllama-999')).rejects.toThrow(/known model \(stories260K\)/);
    await expect(resolveModel(join(dir, 'missing.bin'))).rejects.toThrow(ModelNotFoundError);
  });

  it('verifySha256 says expected, actual and what to do', async () => {
    const bytes = new TextEncoder().encode('abc');
    await verifySha256(bytes, 'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD', 'abc.txt', '');
    await expect(verifySha256(bytes, '0'.repeat(64), 'abc.txt', 'Delete abc.txt.')).rejects.toThrow(
      /abc.txt: sha256 is ba7816bf.*, expected 0{64}\. Delete abc.txt\./,
    );
  });
});
