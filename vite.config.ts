// The demo page (demo/). Model weights are never committed: the dev server serves /models/<name>/<file> from the local
// model folders (FORKLM_MODELS, a path list, then ../shared/models), preferring the Hugging Face layout <name>/hf/,
// and a build copies stories260K's files next to the page. Unknown files answer 404 (not the SPA fallback), so the
// loader can tell a missing optional file from a broken one.
import { existsSync, readFileSync, statSync, createReadStream } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const repo = dirname(fileURLToPath(import.meta.url));
const SERVED_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

export function modelDirs(): string[] {
  const env = process.env.FORKLM_MODELS?.split(delimiter).filter(Boolean) ?? [];
  return [...env, join(repo, '..', 'shared', 'models')].map((d) => resolve(d));
}

/** The file on disk for /models/<name>/<file>, or null. Plain names only: no path can leave the model folders. */
export function modelFile(name: string, file: string): string | null {
  if (!/^[\w-][\w.-]*$/.test(name) || !/^[\w-][\w.-]*$/.test(file)) return null;
  for (const dir of modelDirs()) {
    for (const p of [join(dir, name, 'hf', file), join(dir, name, file)]) {
      if (existsSync(p) && statSync(p).isFile()) return p;
    }
  }
  return null;
}

function serveModels(): Plugin {
  return {
    name: 'forklm-models',
    configureServer(server) {
      server.middlewares.use('/models', (req, res) => {
        const m = /^\/([^/]+)\/([^/]+)$/.exec(decodeURIComponent((req.url ?? '').split('?')[0]));
        const file = m ? modelFile(m[1], m[2]) : null;
        if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
          res.statusCode = 404;
          res.setHeader('Content-Type', 'text/plain');
          res.end(`not found; put the model's files in ${modelDirs().join(' or ')}/<name>/hf/ (or set FORKLM_MODELS)\n`);
          return;
        }
        res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.setHeader('Content-Length', String(statSync(file).size));
        res.setHeader('Cache-Control', 'no-cache');
        if (req.method === 'HEAD') res.end();
        else createReadStream(file).pipe(res);
      });
    },
    generateBundle() {
      for (const f of SERVED_FILES) {
        const p = modelFile('stories260K', f);
        if (p) this.emitFile({ type: 'asset', fileName: `models/stories260K/${f}`, source: readFileSync(p) });
      }
    },
  };
}

export default defineConfig({
  root: join(repo, 'demo'),
  // Relative asset URLs, so the built page also works from a sub-folder (e.g. GitHub Pages).
  base: './',
  plugins: [serveModels()],
  server: { fs: { allow: [repo] } },
  build: { outDir: join(repo, 'dist', 'demo'), emptyOutDir: true, target: 'es2022' },
});
