// The persistent cache behind hub.ts: per repository and revision, each file's bytes, and which files the repository
// does not have (so probing for optional files costs no request the second time).
// - Node: a folder, <root>/hub/<owner>/<name>/<revision>/<file>, with index.json listing the files and their sizes
//   (null: the repository has no such file). <root> is FORKLM_CACHE, else $XDG_CACHE_HOME/forklm, else ~/.cache/forklm.
//   Files are written through a temporary name and a rename, so an interrupted write never leaves a half file.
// - Browser: the Cache API (caches.open(name)), one entry per file under a synthetic URL.
// Only checked downloads are put here (hub.ts). A cached revision that is a branch name ('main') is not re-checked
// against the hub: pin a commit hash for a model that must not change, or clear the cache.
import type { HubId } from './hub.js';
import { importNode, isNode, nodeModules, readPath, writeFileAtomic } from './source.js';

export interface HubCache {
  /** The bytes, null when the repository lacks the file, undefined when the cache does not know. */
  get(file: string): Promise<Uint8Array | null | undefined>;
  put(file: string, bytes: Uint8Array | null): Promise<void>;
}

type Index = Record<string, { size: number } | null>;

async function nodeCacheRoot(): Promise<string> {
  const { path } = await nodeModules();
  if (process.env.FORKLM_CACHE) return process.env.FORKLM_CACHE;
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'forklm');
  const os = await importNode<typeof import('node:os')>('node:os');
  return path.join(os.homedir(), '.cache', 'forklm');
}

async function folderCache(id: HubId, root: string): Promise<HubCache> {
  const { fs, path } = await nodeModules();
  const dir = path.join(root, 'hub', id.owner, id.name, id.revision);
  const indexPath = path.join(dir, 'index.json');
  let index: Index = {};
  try {
    index = JSON.parse(await fs.readFile(indexPath, 'utf8')) as Index;
  } catch {
    index = {}; // no index yet (or an unreadable one): every file is unknown
  }
  return {
    async get(file) {
      if (!(file in index)) return undefined;
      const entry = index[file];
      if (entry === null) return null;
      const bytes = await readPath(path.join(dir, file));
      // A file removed or changed behind the cache's back is unknown again (downloaded and checked anew).
      return bytes !== null && bytes.length === entry.size ? bytes : undefined;
    },
    async put(file, bytes) {
      if (bytes !== null) await writeFileAtomic(path.join(dir, file), bytes);
      index = { ...index, [file]: bytes === null ? null : { size: bytes.length } };
      await writeFileAtomic(indexPath, new TextEncoder().encode(JSON.stringify(index, null, 1)));
    },
  };
}

async function browserCache(id: HubId, name: string): Promise<HubCache | null> {
  const caches = (globalThis as { caches?: CacheStorage }).caches;
  if (!caches) return null;
  const cache = await caches.open(name);
  const key = (file: string) => `https://forklm.invalid/hub/${id.owner}/${id.name}/${encodeURIComponent(id.revision)}/${file}`;
  return {
    async get(file) {
      const res = await cache.match(key(file));
      if (!res) return undefined;
      if (res.headers.get('x-forklm-missing') === '1') return null;
      return new Uint8Array(await res.arrayBuffer());
    },
    async put(file, bytes) {
      const res =
        bytes === null
          ? new Response('', { headers: { 'x-forklm-missing': '1' } })
          : new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(bytes.length) } });
      await cache.put(key(file), res);
    },
  };
}

/** The cache for one repository and revision: `where` is a folder (Node) or a Cache API name (browser). */
export async function openHubCache(id: HubId, where?: string): Promise<HubCache | null> {
  if (isNode) return folderCache(id, where ?? (await nodeCacheRoot()));
  return browserCache(id, where ?? 'forklm-hub');
}
