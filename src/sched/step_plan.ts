// The host's description of one forward step, as flat typed arrays uploaded with one writeBuffer each. Built by the
// scheduler (pure data), consumed by model/forward.ts. See DESIGN.md, "The data flow of one step".

export interface StepPlan {
  /** R: rows computed this step (prompt-chunk rows of prefilling paths + one decode row per decoding path). */
  rows: number;
  /** P: paths that take part in this step (own at least one row). Path slots 0..P-1 index the arrays below. */
  paths: number;
  /** S: paths that sample a token this step (decoding, or whose prefill finishes this step). S <= P. */
  samples: number;
  /** Page-table width for this step: max pages of any path in it. */
  maxPages: number;

  tokenIds: Uint32Array; // (R) token at each row
  positions: Uint32Array; // (R) absolute position of each row in its path
  rowPath: Uint32Array; // (R) step path slot of each row (0..P-1)
  slots: Uint32Array; // (R) page * pageSize + offset where the row's K/V is written
  pageTable: Uint32Array; // (P, maxPages) page ids of each step path; unused entries 0
  seqLen: Uint32Array; // (P) tokens in the path's cache after this step
  sampleRow: Uint32Array; // (S) the row whose logits sample each sampling path's next token
  samplePath: Uint32Array; // (S) step path slot of each sampling path

  /** Engine path id of each step path slot. */
  pathIds: number[];
  /** Page copies (copy-on-write tails of forks) to run before this step's forward, in order. */
  copies: { src: number; dst: number }[];
}
