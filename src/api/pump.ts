// Runs a producer to its end on its own, buffering what it yields, and hands it out through an async iterator. A
// stream's consumer then never holds up the engine (other sessions go on stepping while it is slow), and a consumer
// that stops early (break, return()) aborts the producer, which frees the request's pages.

/** `produce` pushes items with `emit` and sees `signal` aborted when the consumer leaves. */
export function pump<T>(produce: (emit: (item: T) => void, signal: AbortSignal) => Promise<void>, outer?: AbortSignal): AsyncIterableIterator<T> & { controller: AbortController } {
  const controller = new AbortController();
  const onOuter = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  if (outer?.aborted) controller.abort(outer.reason);
  const queue: T[] = [];
  let done = false;
  let closed = false;
  let failure: { error: unknown } | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  void produce((item) => {
    queue.push(item);
    notify();
  }, controller.signal)
    .catch((error: unknown) => {
      failure = { error };
    })
    .finally(() => {
      done = true;
      outer?.removeEventListener('abort', onOuter);
      notify();
    });
  const iterator = {
    controller,
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (closed) return { value: undefined, done: true };
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        if (failure) {
          const f = failure;
          failure = null;
          throw f.error;
        }
        if (done) return { value: undefined, done: true };
        await new Promise<void>((r) => (wake = r));
      }
    },
    async return(): Promise<IteratorResult<T>> {
      closed = true;
      controller.abort();
      queue.length = 0;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
