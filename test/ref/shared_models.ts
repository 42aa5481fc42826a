// The test models live in ../shared/models beside the checkout (FORKLM_MODELS overrides). A missing folder fails the
// tests that need it rather than skipping them: CI always has it, and a silent skip would hide a broken path.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function sharedModelsDir(): string {
  const dir = process.env.FORKLM_MODELS ?? join(repoRoot, '../shared/models');
  if (!existsSync(join(dir, 'stories260K'))) throw new Error(`test models not found at ${dir}; set FORKLM_MODELS to the folder holding stories260K/`);
  return dir;
}
