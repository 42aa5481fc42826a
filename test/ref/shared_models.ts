// The test models live in ../shared/models beside the checkout (FORKLM_MODELS overrides). A missing folder fails the
// tests that need it rather than skipping them: CI always has it, and a silent skip would hide a broken path.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function sharedModelsDir(): string {
  const dir = process.env.FORKLM_MODELS ?? join(repoRoot, '../shared/models');
  if (!existsSync(join(dir, 'stories260K'))) throw new Error(`test models not found at ${dir}; set FORKLM_MODELS to the folder holding stories260K/`);
  return dir;
}

/** The folder holding the published reference outputs (../shared/reference beside the models). */
export function sharedReferenceDir(): string {
  return join(sharedModelsDir(), '../reference');
}

/** llama2.c's published greedy text for stories260K. */
export function referenceGreedyText(): string {
  return JSON.parse(readFileSync(join(sharedReferenceDir(), 'stories260K-greedy.json'), 'utf8')).expected_text;
}

/** Texts every tokenizer must encode exactly as tokenizer.json does: punctuation, whitespace runs, digits, accents,
 * emoji, CJK, and the empty string. */
export const TOKENIZER_TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  'Hello, world! (really?) "yes" -- no; 3/4 = 0.75...',
  'line one\nline two\n\n  indented\ttab',
  'digits 0123456789 and 42 and 2024-11-27',
  'café naïve résumé Straße',
  'emoji 😀 🎉👍🏽 and CJK 日本語 and a flag 🇫🇷',
  '',
  ' ',
  '  leading and trailing  ',
  '\n',
];
