// `npm run bench -- threads`: llvmpipe's thread count on the peers job's forklm half (stories260K: EAB exact-N 16 x 64
// after a 256-token prompt, fork-at-0, single-stream greedy decode), GpuOptions.cpuThreads 0 (kernels on the
// submitting thread) against Mesa's default (a worker per core), each in its own process (bench/threads_child.ts),
// interleaved over rounds so that the machine's load drifts over both alike. Ratios are within this run; the load
// (os.loadavg) is recorded beside them, since on a shared machine a process with more threads also gets more CPU.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log, machine, QUICK } from './bench_models.js';
import { median, round4 } from './common/timing.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = QUICK ? 1 : 3;
type Mode = '0' | 'default';
type Child = Record<string, unknown> & { eabMs: number; forkAt0Ms: number; decodeMs: number; decodeTokS: number };

function child(mode: Mode): Child {
  const env = { ...process.env };
  if (mode === 'default') delete env.LP_NUM_THREADS;
  else env.LP_NUM_THREADS = mode;
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'threads_child.ts')], { env, encoding: 'utf8', timeout: 300_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Child;
}

export async function run(): Promise<object> {
  const runs: Record<Mode, Child[]> = { '0': [], default: [] };
  const load: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which mode goes first, so a load that rises or falls over a round weighs on both.
    for (const mode of (r % 2 === 0 ? ['0', 'default'] : ['default', '0']) as Mode[]) {
      load.push(os.loadavg().map(round4));
      const c = child(mode);
      runs[mode].push(c);
      log(`threads ${mode}: eab ${c.eabMs} ms, fork-at-0 ${c.forkAt0Ms} ms, decode ${c.decodeTokS} tok/s`);
    }
  }
  load.push(os.loadavg().map(round4));
  const med = (mode: Mode, key: 'eabMs' | 'forkAt0Ms' | 'decodeMs') => round4(median(runs[mode].map((c) => c[key])));
  const summary = (mode: Mode) => ({ eabMs: med(mode, 'eabMs'), forkAt0Ms: med(mode, 'forkAt0Ms'), decodeMs: med(mode, 'decodeMs'), decodeTokS: round4(1000 / med(mode, 'decodeMs')) });
  const zero = summary('0');
  const dflt = summary('default');
  return {
    date: new Date().toISOString(),
    machine: machine(),
    quick: QUICK,
    rounds: ROUNDS,
    what: 'medians over rounds of one process each; cpuThreads 0 vs Mesa default; loadavg (1, 5, 15 min) before each process and at the end',
    loadavg: load,
    cpuThreads0: zero,
    mesaDefault: dflt,
    ratios: {
      decodeTokS_zeroOverDefault: round4(zero.decodeTokS / dflt.decodeTokS),
      eabMs_zeroOverDefault: round4(zero.eabMs / dflt.eabMs),
      forkAt0Ms_zeroOverDefault: round4(zero.forkAt0Ms / dflt.forkAt0Ms),
    },
    runs,
  };
}
