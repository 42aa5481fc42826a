// Global setup of the browser project: a local stand-in for the Hugging Face hub, serving the shared test models in
// the hub's URL layout (/<owner>/<name>/resolve/<revision>/<file>) with the hub's headers (Content-Length, and for
// LFS files X-Linked-Size and X-Linked-Etag = the sha256), CORS as the hub sends it, and a count of the requests it
// answered, so a test can tell how many requests a load made. Three broken repositories serve stories260K with a wrong
// sha256, a wrong size, or a body cut off halfway. The page reads the URL with inject('hubUrl').
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    hubUrl: string;
  }
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const models = resolve(process.env.FORKLM_MODELS ?? resolve(root, '../shared/models'));
const arch = resolve(models, '../fixtures/arch');

type Fault = 'none' | 'hash' | 'size' | 'partial';
const STORIES = join(models, 'stories260K', 'hf');
const REPOS: Record<string, { dir: string; fault: Fault }> = {
  'forklm-test/stories260K': { dir: STORIES, fault: 'none' },
  'forklm-test/bad-hash': { dir: STORIES, fault: 'hash' },
  'forklm-test/bad-size': { dir: STORIES, fault: 'size' },
  'forklm-test/partial': { dir: STORIES, fault: 'partial' },
};
for (const family of ['gemma3', 'qwen3-qknorm-headdim', 'gpt2']) REPOS[`forklm-test/arch-${family}`] = { dir: join(arch, family), fault: 'none' };

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, X-Linked-Size, X-Linked-Etag, ETag',
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing = Object.values(REPOS).filter((r) => !existsSync(join(r.dir, 'config.json')));
  // CI has ../shared beside the clone: a missing folder is a broken setup, so the run fails rather than skips.
  if (missing.length) throw new Error(`hub test server: missing ${missing.map((r) => r.dir).join(', ')} (set FORKLM_MODELS or put ../shared beside the checkout)`);
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/__requests') {
      res.writeHead(200, { ...CORS, 'Content-Type': 'application/json' });
      res.end(JSON.stringify(requests));
      return;
    }
    if (url.pathname === '/__reset') {
      requests.length = 0;
      res.writeHead(204, CORS);
      res.end();
      return;
    }
    requests.push(url.pathname);
    const m = /^\/([\w.-]+)\/([\w.-]+)\/resolve\/main\/([\w.-]+)$/.exec(decodeURIComponent(url.pathname));
    const repo = m ? REPOS[`${m[1]}/${m[2]}`] : undefined;
    const file = repo ? join(repo.dir, m![3]) : null;
    if (!repo || !file || !existsSync(file) || !statSync(file).isFile() || req.method !== 'GET') {
      res.writeHead(404, { ...CORS, 'Content-Type': 'text/plain' });
      res.end('Entry not found');
      return;
    }
    const bytes = readFileSync(file);
    const headers: Record<string, string> = { ...CORS, 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) };
    const lfs = file.endsWith('.safetensors');
    if (lfs) {
      const sha = createHash('sha256').update(bytes).digest('hex');
      headers['X-Linked-Size'] = String(bytes.length + (repo.fault === 'size' ? 8 : 0));
      // One hex digit changed: a download whose bytes do not have the sha256 the hub promises.
      headers['X-Linked-Etag'] = `"${repo.fault === 'hash' ? (sha[0] === '0' ? '1' : '0') + sha.slice(1) : sha}"`;
    }
    res.writeHead(200, headers);
    if (lfs && repo.fault === 'partial') {
      // Half the body, then the connection drops: the client sees fewer bytes than Content-Length.
      res.write(bytes.subarray(0, bytes.length >> 1), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(bytes);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  project.provide('hubUrl', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
}
