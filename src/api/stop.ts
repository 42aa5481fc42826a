// Stop strings over streamed text. Text is pushed as it becomes final; what may still turn out to be the beginning of
// a stop string is held back, so a streaming client never sees text that the final answer does not have, and the
// final text ends exactly before the stop string that completes first (the earliest end; at equal ends the longer one),
// wherever token boundaries fall.
//
// Why held-back text suffices: any occurrence of a stop string starts either in the held-back tail or in the new
// text, because the tail held back is the longest suffix that is a proper prefix of some stop string.

export class StopMatcher {
  private held = '';
  private done = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Whether a stop string has been seen. */
  get stopped(): boolean {
    return this.done;
  }

  /** Adds final text; returns the part that is now safe to emit (text after a stop string is dropped). */
  push(text: string): string {
    if (this.done) return '';
    const buf = this.held + text;
    // The stop string that completes first (the earliest end; at equal ends the longer one) is where a generator that
    // sees the text grow would stop: so the answer does not depend on how the text was split into pieces.
    let first = -1;
    let end = Infinity;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (i + s.length < end || (i + s.length === end && i < first))) {
        first = i;
        end = i + s.length;
      }
    }
    if (first >= 0) {
      this.done = true;
      this.held = '';
      return buf.slice(0, first);
    }
    const hold = this.holdLength(buf);
    this.held = buf.slice(buf.length - hold);
    return buf.slice(0, buf.length - hold);
  }

  /** Ends the text: returns what was held back (it did not become a stop string). */
  flush(): string {
    const out = this.done ? '' : this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of a stop string. */
  private holdLength(buf: string): number {
    let best = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, buf.length); k > best; k--)
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
    return best;
  }
}
