// Where model bytes come from: a filesystem path (Node only; node:fs is imported lazily, so this module also loads in a
// browser), a URL (fetch, with progress), or browser Files/Blobs. A model is a set of named files (config.json,
// model.safetensors, ...) behind one ModelFileSet, whatever holds them.
import { ForkLMError, ModelNotFoundError } from '../errors.js';
import { concatBytes } from './bytes.js';

export interface ByteProgress {
  /** The file being read (phase 'upload': the tensor just written to the GPU) */
  file: string;
  loaded: number;
  /** null when the server does not say */
  total: number | null;
  /** 'read' (default when absent): bytes of a file read or downloaded; 'upload': bytes of weights written to the GPU. */
  phase?: 'read' | 'upload';
}
export type ProgressCallback = (p: ByteProgress) => void;

export interface ModelFileSet {
  /** A path, URL or description, for messages */
  readonly label: string;
  /** File names, or null when the holder cannot list them (a URL folder) */
  list(): Promise<string[] | null>;
  /** A file's bytes, or null when it does not exist. */
  tryRead(name: string, onProgress?: ProgressCallback): Promise<Uint8Array | null>;
}

/** A file's bytes; ModelNotFoundError naming the file when it does not exist. */
export async function readRequired(files: ModelFileSet, name: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  const b = await files.tryRead(name, onProgress);
  if (!b) throw new ModelNotFoundError(`${files.label}: ${name} is missing; the model folder is incomplete.`);
  return b;
}

export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

type Fs = typeof import('node:fs/promises');
type PathMod = typeof import('node:path');

/** A Node built-in, imported through a variable so browser bundlers leave it alone. */
export function importNode<T>(specifier: string): Promise<T> {
  if (!isNode) throw new ModelNotFoundError('Reading model files from disk needs Node; in a browser pass a URL or File objects.');
  return import(/* @vite-ignore */ specifier) as Promise<T>;
}

/** node:fs/promises and node:path. */
export async function nodeModules(): Promise<{ fs: Fs; path: PathMod }> {
  const [fs, path] = await Promise.all([importNode<Fs>('node:fs/promises'), importNode<PathMod>('node:path')]);
  return { fs, path };
}

export function isUrl(s: string): boolean {
  return /^(https?|blob|data):/i.test(s);
}

/** 'file', 'dir' or null when nothing is there. */
export async function pathKind(p: string): Promise<'file' | 'dir' | null> {
  const { fs } = await nodeModules();
  try {
    const st = await fs.stat(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

const READ_CHUNK = 16 << 20;

/** Reads a whole file in chunks (so progress can be reported), or null when it does not exist. */
export async function readPath(p: string, onProgress?: ProgressCallback): Promise<Uint8Array | null> {
  const { fs } = await nodeModules();
  let handle: Awaited<ReturnType<Fs['open']>>;
  try {
    handle = await fs.open(p, 'r');
  } catch (cause) {
    if ((cause as { code?: string }).code === 'ENOENT') return null;
    throw new ModelNotFoundError(`${p}: cannot be read (${(cause as Error).message}).`, { cause });
  }
  try {
    const size = (await handle.stat()).size;
    const out = new Uint8Array(size);
    let loaded = 0;
    while (loaded < size) {
      const { bytesRead } = await handle.read(out, loaded, Math.min(READ_CHUNK, size - loaded), loaded);
      if (bytesRead === 0) break;
      loaded += bytesRead;
      onProgress?.({ file: p, loaded, total: size });
    }
    if (size === 0) onProgress?.({ file: p, loaded: 0, total: 0 });
    return loaded === size ? out : out.subarray(0, loaded);
  } catch (cause) {
    // e.g. EISDIR: a folder where a file was expected
    throw new ModelNotFoundError(`${p}: cannot be read (${(cause as Error).message}).`, { cause });
  } finally {
    await handle.close();
  }
}

/** Writes through a temporary file and a rename, so an interrupted download never leaves a half file in the cache. */
export async function writeFileAtomic(p: string, bytes: Uint8Array): Promise<void> {
  const { fs, path } = await nodeModules();
  await fs.mkdir(path.dirname(p), { recursive: true });
  const tmp = `${p}.partial-${process.pid}-${Date.now()}`;
  await fs.writeFile(tmp, bytes);
  await fs.rename(tmp, p);
}

export interface FetchOptions {
  fetch?: typeof fetch;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Downloads `url` with progress; null on 404/410, ModelNotFoundError on any other failure. */
export async function fetchBytes(url: string, opts: FetchOptions = {}): Promise<Uint8Array | null> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: opts.signal });
  } catch (cause) {
    if (cause instanceof ForkLMError) throw cause;
    throw new ModelNotFoundError(`${url}: download failed (${(cause as Error).message}); check the network connection or the URL.`, { cause });
  }
  if (res.status === 404 || res.status === 410) return null;
  if (!res.ok) throw new ModelNotFoundError(`${url}: the server answered ${res.status} ${res.statusText}; check the URL or try again later.`);
  const header = res.headers.get('content-length');
  const total = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    opts.onProgress?.({ file: url, loaded: b.length, total });
    return b;
  }
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      opts.onProgress?.({ file: url, loaded, total });
    }
  } catch (cause) {
    throw new ModelNotFoundError(`${url}: the download broke off after ${loaded} bytes (${(cause as Error).message}); try again.`, { cause });
  }
  if (total !== null && loaded !== total) {
    throw new ModelNotFoundError(`${url}: the download ended after ${loaded} of ${total} bytes; try again.`);
  }
  return chunks.length === 1 ? chunks[0] : concatBytes(chunks);
}

/** A browser File/Blob's bytes, streamed so progress can be reported. */
export async function readBlob(blob: Blob, name: string, onProgress?: ProgressCallback): Promise<Uint8Array> {
  if (typeof blob.stream !== 'function') return new Uint8Array(await blob.arrayBuffer());
  const out = new Uint8Array(blob.size);
  let loaded = 0;
  const reader = blob.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > out.length) throw new ModelNotFoundError(`${name}: the file changed while it was read; try again.`);
    out.set(value, loaded);
    loaded += value.length;
    onProgress?.({ file: name, loaded, total: blob.size });
  }
  return loaded === out.length ? out : out.subarray(0, loaded);
}

/** The files of a directory on disk. */
export function directoryFiles(dir: string): ModelFileSet {
  return {
    label: dir,
    async list() {
      const { fs } = await nodeModules();
      const entries = await fs.readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isFile()).map((e) => e.name);
    },
    async tryRead(name, onProgress) {
      const { path } = await nodeModules();
      return readPath(path.join(dir, name), onProgress);
    },
  };
}

/** Files under a URL prefix (e.g. https://huggingface.co/<repo>/resolve/main/); cannot be listed. */
export function urlFiles(base: string, opts: { fetch?: typeof fetch; signal?: AbortSignal } = {}): ModelFileSet {
  const prefix = base.endsWith('/') ? base : `${base}/`;
  return {
    label: prefix,
    list: async () => null,
    tryRead: (name, onProgress) => fetchBytes(prefix + name, { ...opts, onProgress }),
  };
}

export type MemoryFile = Uint8Array | string | Blob;

/**
 * Files held in memory or as browser Files: a record name -> bytes/text/Blob, or File objects (a folder picked with
 * <input type="file" webkitdirectory multiple>, keyed by their base names).
 */
export function memoryFiles(files: Record<string, MemoryFile> | Iterable<File>, label = 'selected files'): ModelFileSet {
  const map = new Map<string, MemoryFile>();
  if (Symbol.iterator in files) {
    for (const f of files as Iterable<File>) map.set(f.name.slice(f.name.lastIndexOf('/') + 1), f);
  } else {
    for (const [k, v] of Object.entries(files)) map.set(k, v);
  }
  return {
    label,
    list: async () => [...map.keys()],
    async tryRead(name, onProgress) {
      const f = map.get(name);
      if (f === undefined) return null;
      if (typeof f === 'string') return new TextEncoder().encode(f);
      if (f instanceof Uint8Array) {
        onProgress?.({ file: name, loaded: f.length, total: f.length });
        return f;
      }
      return readBlob(f, name, onProgress);
    },
  };
}
