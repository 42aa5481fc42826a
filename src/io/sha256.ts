// sha256 of model files: WebCrypto where it exists (browsers, Node >= 19), else Node's crypto module, imported lazily
// so this file also loads in a browser bundle.
import { ChecksumError } from '../errors.js';

function hex(digest: ArrayBuffer): string {
  const b = new Uint8Array(digest);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) return hex(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(bytes).digest('hex');
}

export function isSha256Hex(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}

/**
 * Throws ChecksumError unless `bytes` hash to `expected`. `where` names the file (a path or URL) and `remedy` says what
 * to do, e.g. delete the cached copy so the next run downloads it again.
 */
export async function verifySha256(bytes: Uint8Array, expected: string, where: string, remedy: string): Promise<void> {
  const want = expected.toLowerCase();
  const actual = await sha256Hex(bytes);
  if (actual !== want) {
    throw new ChecksumError(`${where}: sha256 is ${actual}, expected ${want}. ${remedy}`);
  }
}
