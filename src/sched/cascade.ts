// Shared-prefix (cascade) attention, the host half: which decode rows share which runs of KV pages this step (a tree:
// the prompt's pages shared by every fork, then the generated prefixes that subsets of them share), and the flat
// task lists the two attention kernels read (src/kernels/prefix_attention.ts, paged_attention.ts). Pure data.
//
// Only rows of paths with a single row in the step (decode rows) take part, and only over whole pages before the
// page the row writes: such pages are never written this step (copy-on-write keeps a written page private), and every
// key on them lies before the row's position, so each row of a group sees all of them (up to its sliding window,
// which the kernel applies per row). A prefill chunk's rows attend over their own pages as before.
import type { StepPlan } from './step_plan.js';

/** A run of pages [pageStart, pageEnd) that every path in `paths` has at the same place in its page table. */
export interface PrefixNode {
  pageStart: number;
  pageEnd: number;
  /** Step path slots (decode paths), at least one: a single path is its own pages no other row of the step shares. */
  paths: number[];
  /** Index of the node whose run ends where this one starts, shared by a superset of `paths`; -1 at the root. */
  parent: number;
}

/**
 * The prefix tree of a step's decode paths over their whole pages, parents before children (pre-order). Path slots
 * whose pages match from page 0 form one node; where their pages part, each subset that still matches is a child.
 */
export function prefixTree(
  plan: Pick<StepPlan, 'rows' | 'paths' | 'rowPath' | 'positions' | 'pageTable' | 'maxPages'>,
  pageSize: number,
): PrefixNode[] {
  const rowsOf = new Uint32Array(plan.paths);
  const rowOf = new Int32Array(plan.paths).fill(-1);
  for (let r = 0; r < plan.rows; r++) {
    rowsOf[plan.rowPath[r]]++;
    rowOf[plan.rowPath[r]] = r;
  }
  // Whole pages before the page each decode path writes.
  const full: number[] = [];
  const roots: number[] = [];
  for (let p = 0; p < plan.paths; p++) {
    full.push(rowsOf[p] === 1 ? Math.floor(plan.positions[rowOf[p]] / pageSize) : 0);
    if (full[p] > 0) roots.push(p);
  }
  const page = (p: number, i: number): number => plan.pageTable[p * plan.maxPages + i];
  const nodes: PrefixNode[] = [];
  const split = (paths: number[], depth: number, parent: number): void => {
    const groups = new Map<number, number[]>();
    for (const p of paths) {
      if (full[p] <= depth) continue;
      const id = page(p, depth);
      const g = groups.get(id);
      if (g) g.push(p);
      else groups.set(id, [p]);
    }
    for (const g of groups.values()) {
      let end = depth + 1;
      while (g.every((p) => full[p] > end && page(p, end) === page(g[0], end))) end++;
      nodes.push({ pageStart: depth, pageEnd: end, paths: g, parent });
      if (g.length > 1) split(g, end, nodes.length - 1);
    }
  };
  split(roots, 0, -1);
  return nodes;
}

export interface CascadeShape {
  pageSize: number;
  kvHeads: number;
  /** Query heads per kv head. */
  group: number;
  /** Queries one prefix-attention invocation computes (PrefixAttention.queriesPerItem). */
  queriesPerItem: number;
  /** Pages per task at most: a node's run is split into tasks of this many pages (more parallelism, bounded loops). */
  chunkPages: number;
  /** Partial states per row at most; a node that would need more is cut short and its subtree left to paged attention. */
  maxSlotsPerRow: number;
}

/** Everything the two kernels read, packed in one u32 buffer (layouts in shaders/prefix_attention.wgsl). */
export interface CascadeLists {
  /** rows (R, 3) at 0 | tasks (T, 5) at taskOff | taskRows (slots, 2) at taskRowOff | items (I, 3) at itemOff. */
  meta: Uint32Array;
  taskOff: number;
  taskRowOff: number;
  itemOff: number;
  tasks: number;
  items: number;
  /** Partial states written (one per (task, row)): the partials buffer holds slots * nHeads of them. */
  slots: number;
}

/** Upper bound of CascadeLists.meta's length for `rows` rows, whatever the tree (buffer sizing). */
export function cascadeMetaWords(rows: number, s: Pick<CascadeShape, 'maxSlotsPerRow' | 'kvHeads' | 'group'>): number {
  const slots = rows * s.maxSlotsPerRow;
  return 3 * rows + 5 * slots + 2 * slots + 3 * slots * s.kvHeads * s.group;
}

/**
 * The task lists for `nodes` (prefixTree of the same plan): one task per chunk of each node's run, one partial slot
 * per (task, row), a row's slots contiguous; each row's own start is the end of the runs its tasks cover.
 */
export function packCascade(plan: Pick<StepPlan, 'rows' | 'paths' | 'rowPath'>, nodes: readonly PrefixNode[], s: CascadeShape): CascadeLists {
  const rowOf = new Int32Array(plan.paths).fill(-1);
  for (let r = 0; r < plan.rows; r++) rowOf[plan.rowPath[r]] = r;
  const ownStart = new Uint32Array(plan.rows);
  const rowTasks: number[][] = Array.from({ length: plan.rows }, () => []);
  const tasks: { keyStart: number; keyEnd: number; path: number; rows: number[] }[] = [];
  // Slots used by each node's ancestors and itself; -1: cut short, its children are left out.
  const used: number[] = [];
  for (const n of nodes) {
    const before = n.parent < 0 ? 0 : used[n.parent];
    if (before < 0) {
      used.push(-1);
      continue;
    }
    const pages = n.pageEnd - n.pageStart;
    const chunks = Math.ceil(pages / s.chunkPages);
    const take = Math.min(chunks, s.maxSlotsPerRow - before);
    used.push(take === chunks ? before + take : -1);
    const rows = n.paths.map((p) => rowOf[p]);
    for (let c = 0; c < take; c++) {
      const a = n.pageStart + c * s.chunkPages;
      const b = Math.min(n.pageEnd, a + s.chunkPages);
      for (const r of rows) {
        rowTasks[r].push(tasks.length);
        ownStart[r] = b * s.pageSize;
      }
      tasks.push({ keyStart: a * s.pageSize, keyEnd: b * s.pageSize, path: n.paths[0], rows });
    }
  }
  // Slots: row by row, so each row's are contiguous.
  const slotOf = new Map<string, number>();
  let slots = 0;
  for (let r = 0; r < plan.rows; r++) for (const t of rowTasks[r]) slotOf.set(`${t}:${r}`, slots++);
  let items = 0;
  for (const t of tasks) items += s.kvHeads * Math.ceil((t.rows.length * s.group) / s.queriesPerItem);
  const taskOff = 3 * plan.rows;
  const taskRowOff = taskOff + 5 * tasks.length;
  const itemOff = taskRowOff + 2 * slots;
  const meta = new Uint32Array(itemOff + 3 * items);
  for (let r = 0, first = 0; r < plan.rows; r++) {
    meta.set([ownStart[r], first, rowTasks[r].length], 3 * r);
    first += rowTasks[r].length;
  }
  let taskRow = 0;
  let item = 0;
  tasks.forEach((t, i) => {
    meta.set([t.keyStart, t.keyEnd, t.path, taskRow, t.rows.length], taskOff + 5 * i);
    for (const r of t.rows) meta.set([r, slotOf.get(`${i}:${r}`)!], taskRowOff + 2 * taskRow++);
    for (let kvh = 0; kvh < s.kvHeads; kvh++) {
      for (let q0 = 0; q0 < t.rows.length * s.group; q0 += s.queriesPerItem) meta.set([i, kvh, q0], itemOff + 3 * item++);
    }
  });
  return { meta, taskOff, taskRowOff, itemOff, tasks: tasks.length, items, slots };
}
