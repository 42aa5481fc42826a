// Token texts for the tree's labels, decoded by the worker engine. Drawing is synchronous and decoding is a message
// away, so get() answers from the cache (an empty label the first time), queues what it does not know, and one batched
// decode per frame fills the cache and asks for a redraw.
import type { WorkerEngine } from '../src/worker/client.js';

export class TextCache {
  private readonly known = new Map<string, string>();
  private readonly queued = new Map<string, readonly number[]>();
  private flushing = false;

  constructor(
    private readonly engine: Pick<WorkerEngine, 'decode'>,
    private readonly onReady: () => void,
  ) {}

  get(ids: readonly number[]): string {
    const key = ids.join(',');
    const text = this.known.get(key);
    if (text !== undefined) return text;
    this.queued.set(key, ids);
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => void this.flush());
    }
    return '';
  }

  private async flush(): Promise<void> {
    const batch = [...this.queued];
    this.queued.clear();
    try {
      const out = await this.engine.decode(batch.map(([, ids]) => ids));
      batch.forEach(([key], i) => this.known.set(key, out[i]));
      this.onReady();
    } catch {
      // The engine was replaced or destroyed: these labels are no longer drawn.
    } finally {
      this.flushing = false;
      if (this.queued.size > 0) {
        this.flushing = true;
        queueMicrotask(() => void this.flush());
      }
    }
  }
}
