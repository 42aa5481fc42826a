// resolveModel: a model name (from a manifest in models/), a path or a URL -> where loadModel should read it.
// A name is looked up in the cache (FORKLM_CACHE, else $XDG_CACHE_HOME/forklm or ~/.cache/forklm), then in the local
// model folders (FORKLM_MODELS, then ../shared/models next to the package and next to the working directory), and
// last downloaded from its public URL into the cache, every file checked against the manifest's sha256.
import { ChecksumError, ModelFormatError, ModelNotFoundError } from '../errors.js';
import { sha256Hex, isSha256Hex } from '../io/sha256.js';
import { fetchBytes, importNode, isNode, isUrl, nodeModules, pathKind, readPath, writeFileAtomic } from '../io/source.js';
import type { ProgressCallback } from '../io/source.js';
import type { ModelFormat } from './weight_maps.js';
import stories260K from '../../models/stories260K.json' with { type: 'json' };

export interface ManifestFile {
  name: string;
  size: number | null;
  sha256: string | null;
  /** Public download URL; null for files that exist only locally */
  url: string | null;
}

export interface ManifestFormat {
  /** Sub-folder of the model's folder that holds these files */
  dir: string;
  /** What loadModel gets: "." for the folder itself, else a file name in it */
  entry: string;
  files: ManifestFile[];
  note?: string;
}

export interface ModelManifest {
  name: string;
  description: string;
  license: string;
  /** Format preference when several are present */
  prefer: ModelFormat[];
  formats: Partial<Record<ModelFormat, ManifestFormat>>;
}

const FORMATS: readonly ModelFormat[] = ['hf', 'gguf', 'llama2c'];

/** Checks a manifest's structure; throws ModelFormatError naming the field. */
export function validateManifest(json: unknown, source: string): ModelManifest {
  const bad = (msg: string): never => {
    throw new ModelFormatError(`${source}: ${msg}; fix the manifest.`);
  };
  const obj = (v: unknown, what: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(`${what} is not an object`);
  const m = obj(json, 'the manifest');
  if (typeof m.name !== 'string' || !/^[\w.-]+$/.test(m.name)) bad('"name" is not a plain name');
  const formats = obj(m.formats, '"formats"');
  const out: ModelManifest = {
    name: m.name as string,
    description: typeof m.description === 'string' ? m.description : '',
    license: typeof m.license === 'string' ? m.license : '',
    prefer: [],
    formats: {},
  };
  for (const [key, value] of Object.entries(formats)) {
    if (!FORMATS.includes(key as ModelFormat)) bad(`format "${key}" is not one of ${FORMATS.join(', ')}`);
    const f = obj(value, `formats.${key}`);
    if (typeof f.dir !== 'string' || !/^[\w.-]+$/.test(f.dir)) bad(`formats.${key}.dir is not a plain folder name`);
    if (typeof f.entry !== 'string' || (f.entry !== '.' && !/^[\w.-]+$/.test(f.entry))) bad(`formats.${key}.entry is not "." or a file name`);
    if (!Array.isArray(f.files) || f.files.length === 0) bad(`formats.${key}.files is not a non-empty list`);
    const files = (f.files as unknown[]).map((x, i) => {
      const e = obj(x, `formats.${key}.files[${i}]`);
      if (typeof e.name !== 'string' || !/^[\w.-]+$/.test(e.name)) bad(`formats.${key}.files[${i}].name is not a plain file name`);
      if (e.sha256 !== null && (typeof e.sha256 !== 'string' || !isSha256Hex(e.sha256))) bad(`formats.${key}.files[${i}].sha256 is not 64 hex digits or null`);
      if (e.size !== null && e.size !== undefined && !(Number.isSafeInteger(e.size) && (e.size as number) >= 0)) bad(`formats.${key}.files[${i}].size is not a byte count`);
      if (e.url !== null && (typeof e.url !== 'string' || !/^https:\/\//.test(e.url))) bad(`formats.${key}.files[${i}].url is not an https URL or null`);
      if (typeof e.url === 'string' && e.sha256 === null) bad(`formats.${key}.files[${i}] has a URL but no sha256 to check a download against`);
      return { name: e.name as string, size: (e.size as number | null | undefined) ?? null, sha256: e.sha256 as string | null, url: e.url as string | null };
    });
    if (f.entry !== '.' && !files.some((x) => x.name === f.entry)) bad(`formats.${key}.entry "${f.entry}" is not among its files`);
    out.formats[key as ModelFormat] = { dir: f.dir as string, entry: f.entry as string, files, ...(typeof f.note === 'string' ? { note: f.note } : {}) };
  }
  const prefer = Array.isArray(m.prefer) ? m.prefer : [];
  for (const p of prefer) if (!(p in out.formats)) bad(`"prefer" names format ${JSON.stringify(p)}, which the manifest does not have`);
  out.prefer = [...new Set([...(prefer as ModelFormat[]), ...(Object.keys(out.formats) as ModelFormat[])])];
  return out;
}

export const MANIFESTS: readonly ModelManifest[] = [validateManifest(stories260K, 'models/stories260K.json')];

export function knownModelNames(manifests: readonly ModelManifest[] = MANIFESTS): string[] {
  return manifests.map((m) => m.name);
}

export function findManifest(name: string, manifests: readonly ModelManifest[] = MANIFESTS): ModelManifest | null {
  return manifests.find((m) => m.name.toLowerCase() === name.toLowerCase()) ?? null;
}

export interface ResolveOptions {
  /** Only this format */
  format?: ModelFormat;
  /** Default: FORKLM_CACHE, else $XDG_CACHE_HOME/forklm, else ~/.cache/forklm */
  cacheDir?: string;
  /** Local model folders to search after the cache (default: see localModelDirs) */
  modelDirs?: string[];
  /** Download from public URLs when nothing local is found (default true) */
  download?: boolean;
  /** Check sizes and sha256 of local and cached files (default true; downloads are always checked) */
  verify?: boolean;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  manifests?: readonly ModelManifest[];
}

export interface ResolvedModel {
  /** The manifest name, or null for a path/URL given directly */
  name: string | null;
  /** null when a path or URL was given and its format is left to loadModel */
  format: ModelFormat | null;
  /** What to pass to loadModel: a folder or file path, or a URL */
  path: string;
  from: 'cache' | 'local' | 'download' | 'path' | 'url';
}

export async function defaultCacheDir(): Promise<string> {
  const env = process.env.FORKLM_CACHE;
  if (env) return env;
  const { path } = await nodeModules();
  if (process.env.XDG_CACHE_HOME) return path.join(process.env.XDG_CACHE_HOME, 'forklm');
  const os = await importNode<typeof import('node:os')>('node:os');
  return path.join(os.homedir(), '.cache', 'forklm');
}

/** The folder holding forklm's package.json, found by walking up from this module; null in a bundle. */
export async function packageRoot(): Promise<string | null> {
  if (!isNode || !import.meta.url.startsWith('file:')) return null;
  const { fs, path } = await nodeModules();
  const { fileURLToPath } = await importNode<typeof import('node:url')>('node:url');
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'forklm') return dir;
    } catch {
      // no package.json here: keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Local model folders, in search order: FORKLM_MODELS (path-list), <package>/../shared/models, <cwd>/../shared/models. */
export async function localModelDirs(): Promise<string[]> {
  const { path } = await nodeModules();
  const dirs: string[] = [];
  const env = process.env.FORKLM_MODELS;
  if (env) dirs.push(...env.split(path.delimiter).filter(Boolean));
  const root = await packageRoot();
  if (root) dirs.push(path.resolve(root, '..', 'shared', 'models'));
  dirs.push(path.resolve(process.cwd(), '..', 'shared', 'models'));
  const unique = [...new Set(dirs.map((d) => path.resolve(d)))];
  const present: string[] = [];
  for (const d of unique) if ((await pathKind(d)) === 'dir') present.push(d);
  return present;
}

/** Checks one file against the manifest; ChecksumError says which file, what differs and `remedy`. */
async function verifyFile(filePath: string, f: ManifestFile, remedy: string): Promise<void> {
  const bytes = await readPath(filePath);
  if (!bytes) throw new ModelNotFoundError(`${filePath} disappeared while it was checked.`);
  if (f.size !== null && bytes.length !== f.size) {
    throw new ChecksumError(`${filePath}: ${bytes.length} bytes, expected ${f.size}. ${remedy}`);
  }
  if (f.sha256) {
    const actual = await sha256Hex(bytes);
    if (actual !== f.sha256) throw new ChecksumError(`${filePath}: sha256 is ${actual}, expected ${f.sha256}. ${remedy}`);
  }
}

async function allPresent(dir: string, fmt: ManifestFormat): Promise<boolean> {
  const { path } = await nodeModules();
  for (const f of fmt.files) if ((await pathKind(path.join(dir, f.name))) !== 'file') return false;
  return true;
}

function orderOf(m: ModelManifest, only?: ModelFormat): ModelFormat[] {
  const order = only ? [only] : m.prefer;
  return order.filter((f) => m.formats[f]);
}

async function entryPath(dir: string, fmt: ManifestFormat): Promise<string> {
  const { path } = await nodeModules();
  return fmt.entry === '.' ? dir : path.join(dir, fmt.entry);
}

async function resolveName(m: ModelManifest, opts: ResolveOptions): Promise<ResolvedModel> {
  const formats = orderOf(m, opts.format);
  if (formats.length === 0) throw new ModelNotFoundError(`Model ${m.name} has no ${opts.format} format; it has ${Object.keys(m.formats).join(', ')}.`);
  if (!isNode) {
    // A browser has no disk cache here: hand loadModel the public URL (it checks nothing; the manifest still names the hashes).
    for (const f of formats) {
      const fmt = m.formats[f]!;
      const entry = fmt.files.find((x) => x.name === fmt.entry);
      if (entry?.url && fmt.files.every((x) => x.url)) return { name: m.name, format: f, path: entry.url, from: 'url' };
    }
    throw new ModelNotFoundError(`Model ${m.name} has no public URL for ${formats.join(', ')}; in a browser pass the files themselves.`);
  }
  const { path } = await nodeModules();
  const cache = opts.cacheDir ?? (await defaultCacheDir());
  const verify = opts.verify !== false;
  const places: { dir: string; from: 'cache' | 'local' }[] = [
    { dir: path.join(cache, m.name), from: 'cache' },
    ...(opts.modelDirs ?? (await localModelDirs())).map((d) => ({ dir: path.join(d, m.name), from: 'local' as const })),
  ];
  for (const place of places) {
    for (const f of formats) {
      const fmt = m.formats[f]!;
      const dir = path.join(place.dir, fmt.dir);
      if (!(await allPresent(dir, fmt))) continue;
      if (verify) {
        for (const file of fmt.files) {
          const remedy = place.from === 'cache'
            ? 'The cached file is corrupt or from another version: delete it and run again to download it afresh.'
            : 'The local copy is corrupt or a different version: replace it with the original file.';
          await verifyFile(path.join(dir, file.name), file, remedy);
        }
      }
      return { name: m.name, format: f, path: await entryPath(dir, fmt), from: place.from };
    }
  }
  const downloadable = formats.filter((f) => m.formats[f]!.files.every((x) => x.url));
  if (opts.download !== false && downloadable.length > 0) {
    const f = downloadable[0];
    const fmt = m.formats[f]!;
    const dir = path.join(cache, m.name, fmt.dir);
    for (const file of fmt.files) {
      const dest = path.join(dir, file.name);
      if ((await pathKind(dest)) === 'file') {
        const remedy = 'The cached file is corrupt or from another version: delete it and run again to download it afresh.';
        await verifyFile(dest, file, remedy);
        continue;
      }
      const bytes = await fetchBytes(file.url!, { fetch: opts.fetch, signal: opts.signal, onProgress: opts.onProgress });
      if (!bytes) throw new ModelNotFoundError(`${file.url}: not found (404). The manifest's URL is stale; update models/${m.name}.json.`);
      const actual = await sha256Hex(bytes);
      // Checked before writing, so a bad download never lands in the cache.
      if (actual !== file.sha256) {
        throw new ChecksumError(`${file.url}: the download's sha256 is ${actual}, expected ${file.sha256}. Nothing was cached; run again, and if it persists the file upstream changed.`);
      }
      await writeFileAtomic(dest, bytes);
    }
    return { name: m.name, format: f, path: await entryPath(dir, fmt), from: 'download' };
  }
  const searched = places.map((p) => p.dir).join(', ');
  throw new ModelNotFoundError(
    `Model ${m.name} (${formats.join('/')}) is not in ${searched}` +
      (opts.download === false ? ' and downloading is off.' : ' and none of these formats has a public URL.') +
      ' Put its files there, or set FORKLM_MODELS to a folder that holds them.',
  );
}

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.includes('\\') || /\.(gguf|bin|safetensors|json)$/i.test(s) || s === '.' || s === '..';
}

/** Resolves a model name, a path (folder, .gguf, llama2.c .bin) or a URL to what loadModel should read. */
export async function resolveModel(nameOrPath: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const manifests = opts.manifests ?? MANIFESTS;
  if (isUrl(nameOrPath)) return { name: null, format: null, path: nameOrPath, from: 'url' };
  const manifest = looksLikePath(nameOrPath) ? null : findManifest(nameOrPath, manifests);
  if (manifest) return resolveName(manifest, opts);
  const kind = isNode ? await pathKind(nameOrPath) : null;
  if (kind) {
    // A folder or an unknown extension is left to loadModel, which looks inside.
    const format: ModelFormat | null =
      kind === 'dir' ? null : /\.gguf$/i.test(nameOrPath) ? 'gguf' : /\.safetensors$/i.test(nameOrPath) ? 'hf' : /\.bin$/i.test(nameOrPath) ? 'llama2c' : null;
    return { name: null, format, path: nameOrPath, from: 'path' };
  }
  throw new ModelNotFoundError(
    `"${nameOrPath}" is neither a known model (${knownModelNames(manifests).join(', ')}) nor an existing file or folder. ` +
      `Pass one of those names, a model folder, a .gguf or llama2.c .bin file, or a URL.`,
  );
}
