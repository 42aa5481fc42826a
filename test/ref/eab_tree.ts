// The tree checks every EAB run must pass, whichever engine ran it (GPU engine, remote engine, the CLI's JSON).
import { expect } from 'vitest';
import type { EabResult } from '../../src/branch/eab.js';

/**
 * Each sample's lineage is a chain of parent links; siblings share their parent's tokens exactly up to the fork; the
 * per-token log-probs sum to the sample's; and a sample passes every branch point on its way (those where it was
 * forked off and those where it went on as the first sibling), each where the entropy exceeded `entropyThreshold`,
 * at increasing positions.
 */
export function expectEabLineage(r: Pick<EabResult, 'samples' | 'tree'>, entropyThreshold: number): void {
  const byId = new Map(r.tree.map((n) => [n.path, n]));
  const full = new Map(r.samples.map((s) => [s.path, s.tokens]));
  for (const s of r.samples) {
    for (let i = 1; i < s.lineage.length; i++) {
      const node = byId.get(s.lineage[i])!;
      expect(node.parent).toBe(s.lineage[i - 1]);
      const parentTokens = full.get(node.parent!) ?? null;
      if (parentTokens) expect(s.tokens.slice(0, node.fork_position)).toEqual(parentTokens.slice(0, node.fork_position));
    }
    expect(s.token_logprobs.length).toBe(s.tokens.length);
    expect(s.log_probability).toBeCloseTo(s.token_logprobs.reduce((a, x) => a + x, 0), 9);
    expect(s.branch_points.length).toBeGreaterThanOrEqual(s.lineage.length - 1);
    s.branch_points.forEach((b, i) => {
      expect(b.entropy).toBeGreaterThan(entropyThreshold);
      expect(b.siblings).toBeGreaterThanOrEqual(2);
      if (i > 0) expect(b.position).toBeGreaterThan(s.branch_points[i - 1].position);
    });
  }
}
