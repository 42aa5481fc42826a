// The shared test fixtures (../shared/fixtures beside the checkout, next to the models; FORKLM_FIXTURES overrides).
// A missing folder fails the tests that need it rather than skipping them.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function sharedFixturesDir(): string {
  const dir = process.env.FORKLM_FIXTURES ?? join(repoRoot, '../shared/fixtures');
  if (!existsSync(join(dir, 'quant'))) throw new Error(`test fixtures not found at ${dir}; set FORKLM_FIXTURES to the folder holding quant/ and gguf/`);
  return dir;
}
