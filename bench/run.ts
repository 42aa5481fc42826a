// Benchmark dispatcher: `node --import tsx bench/run.ts [name...]` runs bench/<name>.ts for each name (default: every
// name in BENCHMARKS), prints one JSON object { name: result } on stdout and writes bench/results/<name>.json.
// A benchmark is a module bench/<name>.ts exporting `run(): Promise<object>`; progress goes to stderr so stdout
// stays parseable. Add a new one by creating the module, listing its name below and registering its chart in
// bench/charts.ts, which draws bench/results/<name>.svg from the JSON. FORKLM_BENCH_TAG=<tag> writes
// <name>-<tag>.json and .svg instead, so a run on a loaded machine does not replace the reference run's files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeChart } from './charts.js';

/**
 * Benchmarks run when no name is given, in this order: browser last, since it pairs its Chromium numbers with the
 * Node JSON the others have just written.
 */
export const BENCHMARKS = ['kernels', 'weights', 'decode', 'batch', 'prefix', 'eab', 'peaks', 'remote', 'shapes', 'estimators', 'peers', 'idle', 'gap', 'threads', 'fused', 'idot', 'attention', 'browser'] as const;

interface BenchModule {
  run(): Promise<object>;
}

const here = dirname(fileURLToPath(import.meta.url));
const TAG = process.env.FORKLM_BENCH_TAG ?? '';
if (TAG && !/^[a-z0-9_-]+$/i.test(TAG)) throw new Error(`FORKLM_BENCH_TAG=${TAG}: use letters, digits, - and _ only`);

async function load(name: string): Promise<BenchModule> {
  if (!/^[a-z0-9_-]+$/i.test(name)) throw new Error(`bad benchmark name ${JSON.stringify(name)}: use the file name of bench/<name>.ts`);
  const mod = (await import(new URL(`./${name}.ts`, import.meta.url).href)) as Partial<BenchModule>;
  if (typeof mod.run !== 'function') throw new Error(`bench/${name}.ts does not export run(): Promise<object>`);
  return mod as BenchModule;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const names = args.length > 0 ? args : [...BENCHMARKS];
  const unknown = names.filter((n) => !(BENCHMARKS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; choose from: ${BENCHMARKS.join(' ')}`);
    process.exit(2);
  }
  const out: Record<string, object> = {};
  let failed = false;
  for (const name of names) {
    try {
      const bench = await load(name);
      const t0 = performance.now();
      const started = new Date().toISOString();
      console.error(`bench ${name}: running`);
      // Every result file says when it ran (a benchmark's own `date`, where it has one, wins).
      const result = { started, ...(await bench.run()) };
      console.error(`bench ${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      out[name] = result;
      const dir = join(here, 'results');
      mkdirSync(dir, { recursive: true });
      const file = TAG ? `${name}-${TAG}` : name;
      writeFileSync(join(dir, `${file}.json`), `${JSON.stringify(result, null, 2)}\n`);
      // The chart of a benchmark that has one (bench/charts.ts), redrawn from the result just written.
      const chart = writeChart(name, result, file);
      if (chart) console.error(`bench ${name}: chart ${chart}`);
    } catch (e) {
      failed = true;
      console.error(`bench ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  // Dawn keeps native handles alive; exit explicitly once results are written.
  process.exit(failed ? 1 : 0);
}

await main();
