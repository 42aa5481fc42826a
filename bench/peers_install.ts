// The peers of `npm run bench -- peers` (node-llama-cpp, wllama) are a bench-only install: bench/peers/package.json,
// installed on demand with npm into a cache folder outside the repository, so the library's own dependencies and
// lock file stay small and CI never needs them. FORKLM_BENCH_PEERS_DIR overrides the folder.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from './bench_models.js';

const manifest = join(dirname(fileURLToPath(import.meta.url)), 'peers', 'package.json');

export function peersDir(): string {
  return process.env.FORKLM_BENCH_PEERS_DIR ?? join(os.homedir(), '.cache', 'forklm', 'bench-peers');
}

/** The installed version of `name` in the peers folder, or null. */
export function peerVersion(name: string): string | null {
  const p = join(peersDir(), 'node_modules', name, 'package.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version : null;
}

/**
 * Installs bench/peers/package.json into peersDir() unless every pinned version is there already. Install scripts
 * are skipped: node-llama-cpp's would try to download or build llama.cpp; its prebuilt binary ships in a package.
 */
export function installPeers(): Record<string, string | null> {
  const want = (JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies: Record<string, string> }).dependencies;
  const have = () => Object.fromEntries(Object.keys(want).map((n) => [n, peerVersion(n)]));
  if (Object.entries(want).every(([n, v]) => peerVersion(n) === v)) return have();
  const dir = peersDir();
  mkdirSync(dir, { recursive: true });
  copyFileSync(manifest, join(dir, 'package.json'));
  log(`peers: npm install into ${dir} (bench-only; about 500 MB with node-llama-cpp's prebuilt binaries)`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], timeout: 900_000 });
  return have();
}
