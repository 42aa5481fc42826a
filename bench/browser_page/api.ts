// The contract between bench/browser.ts (Node, Playwright) and the bench page (Chromium): Node calls
// window.forklmBench.setup() once per launch, then run(section) for each section, each through page.evaluate, and
// gets plain JSON back. Types only, plus the section list, so both sides import it.

/** The adapter a Chromium launch is configured for (its flags decide; the page only asks for the matching mode). */
export type BrowserAdapter = 'swiftshader' | 'llvmpipe';

export const SECTIONS = ['kernels', 'decode', 'batch', 'eab', 'peaks'] as const;
export type Section = (typeof SECTIONS)[number];

export interface SetupOptions {
  adapter: BrowserAdapter;
  /** URL of stories260K's Hugging Face folder (config.json, model.safetensors, tokenizer.json), ending in '/'. */
  modelUrl: string;
  /** Tiny counts: checks that every section runs end to end (numbers meaningless). */
  quick: boolean;
}

export interface AdapterRecord {
  /** forklm's adapter name (src/gpu/device.ts) and what it concluded. */
  name: string;
  kind: string;
  isCpu: boolean;
  info: { vendor: string; architecture: string; device: string; description: string };
  isFallbackAdapter: boolean | null;
  /** Whether the adapter's name says what the launch asked for (swiftshader, llvmpipe). */
  matchesLaunch: boolean;
  features: string[];
  limits: Record<string, number>;
  userAgent: string;
  crossOriginIsolated: boolean;
  model: { url: string; loadMs: number; layers: number; dim: number; vocab: number; maxSeqLen: number };
}

export interface BenchApi {
  setup(o: SetupOptions): Promise<AdapterRecord>;
  run(section: Section): Promise<object>;
  teardown(): void;
}

declare global {
  interface Window {
    forklmBench?: BenchApi;
  }
}
