// The Node benchmarks' harness: the environment-free timing of bench/common/timing.ts (shared with the Chromium page),
// and a meter of how busy the machine was, which reads /proc and so stays on the Node side.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { round4 } from './common/timing.js';

export {
  median,
  plainSamplingWords,
  randomF32,
  round4,
  runBatch,
  timeCalls,
  timeEncode,
  timingJson,
  type Timing,
  type TimingOptions,
} from './common/timing.js';

/**
 * Measures how busy the machine was with other processes while a benchmark ran: (all CPU time - this process's CPU
 * time, which includes llvmpipe's and SwiftShader's worker threads, and that of its children once they have exited
 * and been waited for: a bench's child process, a llama-server it stopped, a Chromium it closed) / (wall time *
 * cores). Children still running when it is read count as others. Linux only (/proc); null elsewhere. Numbers taken
 * at 0.5 mean half the cores were someone else's.
 */
export async function startLoadMeter(): Promise<() => Promise<number | null>> {
  const ticks = (): number | null => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      return f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal, in 1/100 s
    } catch {
      return null;
    }
  };
  // utime, stime, cutime, cstime of this process (fields 14-17 of /proc/self/stat), in 1/100 s.
  const own = (): number | null => {
    try {
      const s = readFileSync('/proc/self/stat', 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
      return f[11] + f[12] + f[13] + f[14];
    } catch {
      return null;
    }
  };
  const t0 = ticks();
  const o0 = own();
  const w0 = performance.now();
  return async () => {
    const t1 = ticks();
    const o1 = own();
    if (t0 === null || t1 === null || o0 === null || o1 === null) return null;
    const wallS = (performance.now() - w0) / 1000;
    const othersS = (t1 - t0 - (o1 - o0)) / 100;
    return round4(Math.min(1, Math.max(0, othersS / (wallS * os.cpus().length))));
  };
}
