// The Chromium half of the weight-read benchmark (bench/weights.ts): headless Chromium 156 launched per adapter with
// browser.ts's flags (SwiftShader; llvmpipe through ANGLE's GL route), running bench/weights_page/ against src/ as
// served by a Vite dev server. Each launch's failure is recorded and the next still runs.
import { chromium, type Browser } from 'playwright-core';
import { errorText, log } from './bench_models.js';
import { LAUNCH_ARGS } from './browser.js';
import type { BrowserAdapter } from './browser_page/api.js';
import { startPageServer } from './page_server.js';

const TIMEOUT_MS = 600_000;

export async function weightsInChromium(adapters: BrowserAdapter[], rounds: (a: BrowserAdapter) => number): Promise<Record<string, object>> {
  const { origin, close } = await startPageServer('bench/weights_page/index.html', 'bench-weights');
  const out: Record<string, object> = {};
  try {
    for (const adapter of adapters) {
      let browser: Browser | null = null;
      try {
        browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: LAUNCH_ARGS[adapter] });
        const page = await browser.newPage();
        page.on('console', (m) => {
          if (m.type() === 'error') log(`[weights page] ${m.text()}`);
        });
        await page.goto(`${origin}/bench/weights_page/index.html`);
        await page.waitForFunction(() => window.forklmWeights !== undefined, undefined, { timeout: 120_000 });
        log(`bench weights: chromium ${adapter}`);
        page.setDefaultTimeout(TIMEOUT_MS);
        out[adapter] = { chromium: browser.version(), args: LAUNCH_ARGS[adapter], ...(await page.evaluate((o) => window.forklmWeights!.run(o), { adapter, rounds: rounds(adapter) })) };
      } catch (e) {
        out[adapter] = { error: errorText(e) };
        log(`bench weights: chromium ${adapter} failed: ${errorText(e)}`);
      } finally {
        await browser?.close();
      }
    }
  } finally {
    await close();
  }
  return out;
}
