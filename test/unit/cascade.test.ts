import { describe, expect, it } from 'vitest';
import { packCascade, prefixTree, type CascadeShape } from '../../src/sched/cascade.js';
import { mulberry32, testSeed } from '../ref/random.js';

/** A step plan over explicit page tables: one decode row per path at `positions[p]`, or `rows[p]` rows ending there. */
function planOf(tables: number[][], positions: number[], rows: number[] = tables.map(() => 1)) {
  const maxPages = Math.max(...tables.map((t) => t.length));
  const pageTable = new Uint32Array(tables.length * maxPages);
  tables.forEach((t, p) => pageTable.set(t, p * maxPages));
  const rowPath: number[] = [];
  const pos: number[] = [];
  positions.forEach((end, p) => {
    for (let j = rows[p] - 1; j >= 0; j--) {
      rowPath.push(p);
      pos.push(end - j);
    }
  });
  return { rows: rowPath.length, paths: tables.length, maxPages, pageTable, rowPath: Uint32Array.from(rowPath), positions: Uint32Array.from(pos) };
}

describe('prefixTree', () => {
  it('finds the shared runs of a fork tree, parents first, and leaves prefill chunks out', () => {
    // Page size 4. Paths 0-2 share pages 10, 11; 0 and 1 also share 12; path 3 prefills 3 rows over 10, 11.
    const plan = planOf(
      [
        [10, 11, 12, 13, 14],
        [10, 11, 12, 20],
        [10, 11, 30, 31],
        [10, 11, 40],
      ],
      [17, 13, 14, 9],
      [1, 1, 1, 3],
    );
    const nodes = prefixTree(plan, 4);
    expect(nodes).toEqual([
      { pageStart: 0, pageEnd: 2, paths: [0, 1, 2], parent: -1 },
      { pageStart: 2, pageEnd: 3, paths: [0, 1], parent: 0 },
      // Path 0 writes page 4 (position 17): pages 3 is its own whole page; path 1 writes page 3, nothing of its own.
      { pageStart: 3, pageEnd: 4, paths: [0], parent: 1 },
      { pageStart: 2, pageEnd: 3, paths: [2], parent: 0 },
    ]);
  });
});

describe('packCascade', () => {
  const shape = (over: Partial<CascadeShape> = {}): CascadeShape => ({
    pageSize: 4,
    kvHeads: 2,
    group: 3,
    queriesPerItem: 4,
    chunkPages: 2,
    maxSlotsPerRow: 8,
    ...over,
  });

  it('covers each decode row from key 0 to its own start with its tasks, on random fork trees', () => {
    for (let trial = 0; trial < 20; trial++) {
      const seed = testSeed() + trial;
      const rand = mulberry32(seed);
      const ps = 2 + Math.floor(rand() * 4);
      // Random forks: a path copies a random prefix of whole pages of an earlier one, then gets fresh pages.
      let next = 100;
      const tables: number[][] = [Array.from({ length: 2 + Math.floor(rand() * 6) }, () => next++)];
      const nPaths = 2 + Math.floor(rand() * 10);
      for (let p = 1; p < nPaths; p++) {
        const parent = tables[Math.floor(rand() * p)];
        const keep = Math.floor(rand() * (parent.length + 1));
        tables.push([...parent.slice(0, keep), ...Array.from({ length: 1 + Math.floor(rand() * 3) }, () => next++)]);
      }
      const positions = tables.map((t) => (t.length - 1) * ps + Math.floor(rand() * ps));
      const rows = tables.map((_, p) => (p === 0 && rand() < 0.5 ? 2 : 1));
      const plan = planOf(tables, positions, rows);
      const s = shape({ pageSize: ps, chunkPages: 1 + Math.floor(rand() * 3), maxSlotsPerRow: 1 + Math.floor(rand() * 6) });
      const lists = packCascade(plan, prefixTree(plan, ps), s);
      const m = lists.meta;
      const covered: number[][] = Array.from({ length: plan.rows }, () => []);
      let items = 0;
      for (let t = 0; t < lists.tasks; t++) {
        const [k0, k1, tablePath, rowBegin, count] = m.slice(lists.taskOff + 5 * t, lists.taskOff + 5 * t + 5);
        expect(k0 % ps, `seed ${seed}`).toBe(0);
        expect(k1 - k0, `seed ${seed}`).toBeLessThanOrEqual(s.chunkPages * ps);
        items += s.kvHeads * Math.ceil((count * s.group) / s.queriesPerItem);
        for (let i = 0; i < count; i++) {
          const [r, slot] = m.slice(lists.taskRowOff + 2 * (rowBegin + i), lists.taskRowOff + 2 * (rowBegin + i) + 2);
          const p = plan.rowPath[r];
          // The task's pages are the row's own pages there, and lie before the page the row writes.
          for (let pg = k0 / ps; pg < k1 / ps; pg++) expect(tables[p][pg], `seed ${seed}`).toBe(tables[tablePath][pg]);
          expect(k1, `seed ${seed}`).toBeLessThanOrEqual(Math.floor(plan.positions[r] / ps) * ps);
          // Slot = the row's first slot + the task's rank among the row's tasks.
          expect(slot, `seed ${seed}`).toBe(m[3 * r + 1] + covered[r].length / 2);
          covered[r].push(k0, k1);
        }
      }
      expect(items, `seed ${seed}`).toBe(lists.items);
      for (let r = 0; r < plan.rows; r++) {
        const [own, , n] = m.slice(3 * r, 3 * r + 3);
        expect(n, `seed ${seed}`).toBe(covered[r].length / 2);
        expect(n, `seed ${seed}`).toBeLessThanOrEqual(s.maxSlotsPerRow);
        // The runs tile [0, own) in order.
        let end = 0;
        for (let i = 0; i < covered[r].length; i += 2) {
          expect(covered[r][i], `seed ${seed}`).toBe(end);
          end = covered[r][i + 1];
        }
        expect(own, `seed ${seed}`).toBe(end);
        // A prefill chunk's rows take no part.
        if (rows[plan.rowPath[r]] > 1) expect(n, `seed ${seed}`).toBe(0);
      }
    }
  });

  it('splits a run into chunks and stops a subtree at the slot cap', () => {
    // Two paths share 5 whole pages; path 0 owns 3 more whole pages. chunkPages 2, at most 4 slots per row.
    const plan = planOf(
      [
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 5, 10],
      ],
      [35, 21],
    );
    const lists = packCascade(plan, prefixTree(plan, 4), shape({ maxSlotsPerRow: 4 }));
    // Shared: pages [0,2) [2,4) [4,5): 3 tasks for both rows; path 0's own [5,8) would need 2 more, only 1 fits.
    expect(lists.tasks).toBe(4);
    expect(Array.from(lists.meta.slice(0, 6))).toEqual([28, 0, 4, 20, 4, 3]);
  });
});
