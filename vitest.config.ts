import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';

const root = dirname(fileURLToPath(import.meta.url));
// Every vitest run (targeted ones too, not only `npm test`) bundles the current shaders/*.wgsl first: a stale
// src/kernels/wgsl.gen.ts once made every fused pipeline invalid. The generator writes only when the bundle changed.
execFileSync(process.execPath, [resolve(root, 'scripts/gen-shaders.mjs')], { stdio: 'inherit' });
// The test models live beside the checkout (never in it); the browser tests fetch them from the Vite server.
const sharedModels = resolve(process.env.FORKLM_MODELS ?? resolve(root, '../shared/models'));

// Chromium flags from ../shared/webgpu-on-cpu.md: software WebGPU (SwiftShader) and no background network traffic.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

// Chromium's GL route: llvmpipe through ANGLE in compatibility mode, as a page sees it: the adapter names no vendor,
// architecture or description (src/gpu/adapters.ts anonymousAdapter).
export const CHROMIUM_GL_ROUTE_ARGS = [...CHROMIUM_ARGS, '--use-angle=gl-egl', '--use-webgpu-adapter=opengles'];
// The same with the developer-features flag, which only exposes the adapter's identity (the benchmarks record it).
export const CHROMIUM_GL_ARGS = [...CHROMIUM_GL_ROUTE_ARGS, '--enable-webgpu-developer-features'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/unit/**/*.test.ts', 'test/kernels/**/*.test.ts', 'test/model/**/*.test.ts', 'test/remote/**/*.test.ts'],
          environment: 'node',
          setupFiles: ['test/ref/fast_check_seed.ts'],
          // Dawn's native addon is safest in child processes, one device set per file.
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        define: { __FORKLM_SHARED_MODELS__: JSON.stringify(sharedModels) },
        server: { fs: { allow: [root, resolve(sharedModels, '..')] } },
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts', 'test/kernels/**/*.test.ts'],
          // A local stand-in for the Hugging Face hub (test/browser/hub.test.ts).
          globalSetup: ['test/browser/hub_server.ts'],
          testTimeout: 180_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        // Chromium's GL route (llvmpipe through ANGLE, bench/browser.ts LAUNCH_ARGS.llvmpipe), where the register-blocked
        // matmul and the per-head attention run written out (src/gpu/register_blocks.ts): the matmul and attention tests
        // (the cascade's merge too), token_stats (llvmpipe's loop cap and single-draw pipeline), mlp_block written out, and the quantized matmul on every
        // storage type (issue 12: each type against float64 on both CPU adapters in Chromium too) with its one-row epilogues
        // (act_q8, the x hand-off: llvmpipe only), on the page's llvmpipe adapter.
        // Without the developer-features flag, as users' pages run: test/browser-gl/ checks the fused decode's rule and
        // tokens there (stories260K from the shared models folder).
        define: { __FORKLM_TEST_ADAPTER__: JSON.stringify('llvmpipe'), __FORKLM_SHARED_MODELS__: JSON.stringify(sharedModels) },
        server: { fs: { allow: [root, resolve(sharedModels, '..')] } },
        test: {
          name: 'browser-gl',
          include: [
            'test/kernels/matmul*.test.ts',
            'test/kernels/qmatmul.test.ts',
            'test/kernels/qmatmul_act_q8.test.ts',
            'test/kernels/x8_handoff.test.ts',
            'test/kernels/token_stats.test.ts',
            'test/kernels/mlp_block.test.ts',
            'test/kernels/paged_attention.test.ts',
            'test/kernels/paged_attention_loop_limit.test.ts',
            'test/kernels/prefix_attention.test.ts',
            'test/browser-gl/**/*.test.ts',
          ],
          testTimeout: 180_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_GL_ROUTE_ARGS } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        // The demo page in real Chromium, driven by Playwright against a Vite server the test starts itself.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 240_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
