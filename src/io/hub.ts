// Models by Hugging Face hub id: 'owner/name' (a model folder) or 'owner/name/file.gguf' (one file), optionally
// '@revision'. Files come from the hub's URL layout, <base>/<owner>/<name>/resolve/<revision>/<file>, with a
// configurable base (a mirror, a local server), through a persistent cache (hub_cache.ts: a folder in Node, the Cache
// API in a browser), so a second load of the same model makes no request at all: the cache also remembers which
// optional files (e.g. model.safetensors.index.json) the repository does not have.
//
// Every download is checked before it is cached: its length against Content-Length and the hub's X-Linked-Size, and
// for files the hub stores in LFS (weights) its sha256 against X-Linked-Etag, which the hub sets to the file's sha256
// (https://huggingface.co/docs/hub/storage-backends). A mismatch is a ChecksumError, a download that breaks off a
// ModelNotFoundError naming the bytes received; neither is cached.
import { ChecksumError, InvalidArgumentError, ModelNotFoundError } from '../errors.js';
import { concatBytes } from './bytes.js';
import { openHubCache, type HubCache } from './hub_cache.js';
import { sha256Hex } from './sha256.js';
import type { ModelFileSet, ProgressCallback } from './source.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface HubId {
  owner: string;
  name: string;
  revision: string;
  /** A single file of the repository to load (a .gguf), or null for the whole folder. */
  file: string | null;
}

export interface HubProgress {
  file: string;
  /** Bytes of this file so far, and its size when known. */
  loaded: number;
  total: number | null;
  /** Files finished so far (downloaded or from the cache) and whether this one came from the cache. */
  filesDone: number;
  cached: boolean;
}

export interface HubOptions {
  /** Base URL of the hub or a mirror; default https://huggingface.co (FORKLM_HUB_URL / HF_ENDPOINT in Node). */
  baseUrl?: string;
  /** Folder (Node) or Cache API cache name (browser) for the persistent cache; `false`: no cache. */
  cache?: string | false;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: (p: HubProgress) => void;
}

const PART = /^[A-Za-z0-9][\w.-]*$/;

/** Parses a hub id; null when `s` is not one ('owner/name[/file.gguf][@revision]'). */
export function parseHubId(s: string): HubId | null {
  const at = s.lastIndexOf('@');
  const body = at > 0 ? s.slice(0, at) : s;
  const revision = at > 0 ? s.slice(at + 1) : 'main';
  if (!/^[\w.-]+$/.test(revision)) return null;
  const parts = body.split('/');
  if (parts.length < 2 || !PART.test(parts[0]) || !PART.test(parts[1])) return null;
  if (parts.length === 2) return { owner: parts[0], name: parts[1], revision, file: null };
  const file = parts.slice(2).join('/');
  if (!file.endsWith('.gguf') || parts.slice(2).some((p) => !PART.test(p))) return null;
  return { owner: parts[0], name: parts[1], revision, file };
}

function envBase(): string | undefined {
  if (typeof process === 'undefined') return undefined;
  return process.env?.FORKLM_HUB_URL ?? process.env?.HF_ENDPOINT;
}

/** The URL of one file of a repository in the hub's layout. */
export function hubFileUrl(id: HubId, file: string, baseUrl = envBase() ?? DEFAULT_HUB_URL): string {
  const base = baseUrl.replace(/\/+$/, '');
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${base}/${id.owner}/${id.name}/resolve/${encodeURIComponent(id.revision)}/${path}`;
}

/** Downloads and checks one file; null when the repository does not have it (404). */
async function download(url: string, file: string, options: HubOptions, progress: (loaded: number, total: number | null) => void): Promise<Uint8Array | null> {
  const doFetch = options.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: options.signal, redirect: 'follow' });
  } catch (cause) {
    throw new ModelNotFoundError(`${url}: download failed (${(cause as Error).message}); check the network, the hub URL or the id.`, { cause });
  }
  if (res.status === 404) return null;
  if (res.status === 401 || res.status === 403)
    throw new ModelNotFoundError(`${url}: the hub answered ${res.status}; the repository is private, gated or does not exist.`);
  if (!res.ok) throw new ModelNotFoundError(`${url}: the hub answered ${res.status} ${res.statusText}; try again later.`);
  const num = (h: string | null) => (h !== null && /^\d+$/.test(h) ? Number(h) : null);
  const length = num(res.headers.get('content-length'));
  const linkedSize = num(res.headers.get('x-linked-size'));
  const etag = (res.headers.get('x-linked-etag') ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  const expectedSize = linkedSize ?? length;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
        progress(loaded, expectedSize);
      }
    } else {
      chunks.push(new Uint8Array(await res.arrayBuffer()));
      loaded = chunks[0].length;
      progress(loaded, expectedSize);
    }
  } catch (cause) {
    throw new ModelNotFoundError(`${url}: the download broke off after ${loaded} bytes (${(cause as Error).message}); nothing was cached, try again.`, {
      cause,
    });
  }
  if ((length !== null && loaded !== length) || (linkedSize !== null && loaded !== linkedSize))
    throw new ModelNotFoundError(`${url}: the download ended after ${loaded} of ${expectedSize} bytes; nothing was cached, try again.`);
  const bytes = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
  if (/^[0-9a-f]{64}$/.test(etag)) {
    const got = await sha256Hex(bytes);
    if (got !== etag)
      throw new ChecksumError(`${file} from ${url} has sha256 ${got}, but the hub says ${etag}: the download is corrupt and was not cached. Try again.`);
  }
  return bytes;
}

/**
 * The files of a hub repository at a revision, read through the cache. Reads of files the repository lacks resolve to
 * null (and are remembered, so the next load asks nothing). Errors: ModelNotFoundError (network, 401/403, broken
 * download), ChecksumError (size or sha256 mismatch).
 */
export function hubFiles(id: HubId, options: HubOptions = {}): ModelFileSet {
  const label = `${id.owner}/${id.name}@${id.revision}`;
  let cache: Promise<HubCache | null> | null = null;
  const cacheOf = () => (cache ??= options.cache === false ? Promise.resolve(null) : openHubCache(id, options.cache));
  let filesDone = 0;
  return {
    label,
    list: async () => null,
    async tryRead(file: string, onProgress?: ProgressCallback): Promise<Uint8Array | null> {
      if (file.split('/').some((p) => !PART.test(p))) throw new InvalidArgumentError(`'${file}' is not a file name of a hub repository.`);
      const c = await cacheOf();
      const hit = c ? await c.get(file) : undefined;
      if (hit !== undefined) {
        if (hit !== null) {
          filesDone++;
          options.onProgress?.({ file, loaded: hit.length, total: hit.length, filesDone, cached: true });
          onProgress?.({ file, loaded: hit.length, total: hit.length });
        }
        return hit;
      }
      const url = hubFileUrl(id, file, options.baseUrl);
      const bytes = await download(url, file, options, (loaded, total) => {
        options.onProgress?.({ file, loaded, total, filesDone, cached: false });
        onProgress?.({ file, loaded, total });
      });
      if (bytes !== null) filesDone++;
      if (c) await c.put(file, bytes);
      return bytes;
    },
  };
}
