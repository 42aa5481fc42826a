// A Vite dev server for a benchmark page (bench/<name>_page/index.html, which imports src/ modules as they are), on a
// free localhost port, for the benchmarks that launch headless Chromium themselves (gap, weights). Close it when done.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Serves the repository (and the folders in `allow`, e.g. the models) with `entry` (a path from its root) scanned for dependencies up front. */
export async function startPageServer(entry: string, cacheName: string, allow: string[] = []): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = await createServer({
    configFile: false,
    root: repoRoot,
    appType: 'mpa',
    logLevel: 'warn',
    clearScreen: false,
    cacheDir: join(repoRoot, 'node_modules', '.vite', cacheName),
    server: { host: '127.0.0.1', port: 0, hmr: false, watch: null, fs: { allow: [repoRoot, ...allow] } },
    // Scanned up front, so dependency optimisation never reloads the page mid-run.
    optimizeDeps: { entries: [entry] },
  });
  await server.listen();
  const addr = server.httpServer!.address();
  return { origin: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, close: () => server.close() };
}
