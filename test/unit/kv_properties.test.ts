// Random command sequences against KvCache, with a small pool so exhaustion is frequent, and a model of GPU memory:
// every slot holds the prefix its K/V was computed for (tokens 0..i). As on the GPU, a `step` runs the queued page
// copies (drainCopies) in order and then the K/V writes of the tokens appended since the last step; forks happen
// between steps, as the scheduler does them. After every step the model must agree with the page tables: that is
// what "copy-on-write forks and prefix reuse never hand a path wrong K/V" means, and it catches a shared page written,
// a tail shared instead of copied, a stale cached page reused, or a copy queue run out of order or pruned.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PagePoolExhaustedError } from '../../src/errors.js';
import { KvCache } from '../../src/kv/kv_cache.js';
import { type ChainHashFn, chainHash } from '../../src/kv/prefix_cache.js';

type Cmd =
  | { kind: 'create' }
  | { kind: 'prompt'; tokens: number[] }
  | { kind: 'append'; at: number; tokens: number[] }
  | { kind: 'fork'; at: number }
  | { kind: 'forkAt'; at: number; pos: number }
  | { kind: 'free'; at: number }
  | { kind: 'step' };

const HASHES: Record<string, ChainHashFn> = {
  real: chainHash,
  constant: () => 7, // every page collides
  parentBlind: (_p, t, s, e) => chainHash(0, t, s, e), // equal pages after different prefixes collide
};

const tok = fc.integer({ min: 0, max: 2 }); // a tiny alphabet, so prompts share prefixes often
// Prompts = a cut of one of three stems + a random tail, so requests share prefixes often.
const STEMS = [
  [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
  [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
  [0, 1, 2, 0, 2, 2, 2, 2, 1, 1, 0, 0],
];
const promptArb = fc
  .tuple(fc.constantFrom(...STEMS), fc.integer({ min: 0, max: 12 }), fc.array(tok, { maxLength: 4 }))
  .map(([stem, cut, tail]) => [...stem.slice(0, cut), ...tail])
  .filter((t) => t.length > 0);
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'create' as const }) },
  { weight: 2, arbitrary: promptArb.map((tokens) => ({ kind: 'prompt' as const, tokens })) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), at: fc.nat(), tokens: fc.array(tok, { minLength: 1, maxLength: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('fork' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('forkAt' as const), at: fc.nat(), pos: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('free' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'step' as const }) },
);
const configArb = fc.record({
  numPages: fc.integer({ min: 2, max: 8 }),
  pageSize: fc.constantFrom(1, 2, 3, 4),
  hash: fc.constantFrom('real', 'real', 'constant', 'parentBlind'),
  prefixCaching: fc.integer({ min: 0, max: 4 }).map((n) => n > 0), // mostly on
});

const totals = { steps: 0, commands: 0, exhausted: 0, copies: 0, prefixHits: 0, sharedPagesSeen: 0, writes: 0 };

type Config = typeof configArb extends fc.Arbitrary<infer T> ? T : never;

function runSequence(config: Config, cmds: Cmd[]): void {
  const ps = config.pageSize;
  const badWrites: string[] = [];
  const written: [number, number][] = [];
  const kv = new KvCache({
    numPages: config.numPages,
    pageSize: ps,
    prefixCaching: config.prefixCaching,
    hash: HASHES[config.hash],
    onSlotWrite: (page, offset, rc) => {
      written.push([page, offset]);
      if (rc !== 1) badWrites.push(`page ${page} offset ${offset} written at refCount ${rc}`);
    },
  });
  // GPU memory model: memory[page][offset] = the prefix (tokens 0..i, joined) whose K/V the slot holds.
  const memory: string[][] = Array.from({ length: config.numPages }, () => new Array<string>(ps).fill('garbage'));
  const model = new Map<number, number[]>(); // path -> tokens
  const pendingWrites: { page: number; offset: number; prefix: string }[] = [];
  const live: number[] = [];
  const pick = (at: number) => live[at % live.length];
  let peak = 0;

  // Plain comparisons in the hot loop (expect() costs microseconds each and this runs ~150k times).
  const fail = (msg: string): never => {
    throw new Error(`${msg}\n  config ${JSON.stringify(config)}`);
  };

  const appendChecked = (path: number, toks: number[]) => {
    const len = model.get(path)!.length;
    written.length = 0;
    const { slots } = kv.append(path, toks);
    const tokens = model.get(path)!;
    tokens.push(...toks);
    const pages = kv.pages(path);
    if (slots.length !== toks.length) fail(`append of ${toks.length} tokens gave ${slots.length} slots`);
    for (let j = 0; j < toks.length; j++) {
      const i = len + j;
      if (slots[j] !== pages[Math.floor(i / ps)] * ps + (i % ps)) fail(`token ${i} got slot ${slots[j]}, pages ${pages}`);
      if (written[j][0] * ps + written[j][1] !== slots[j]) fail(`slot ${slots[j]} reported as write ${written[j]}`);
      pendingWrites.push({ page: Math.floor(slots[j] / ps), offset: slots[j] % ps, prefix: tokens.slice(0, i + 1).join(',') });
    }
    totals.writes += toks.length;
  };

  const step = () => {
    for (const c of kv.drainCopies()) memory[c.dst] = [...memory[c.src]];
    for (const w of pendingWrites) memory[w.page][w.offset] = w.prefix;
    pendingWrites.length = 0;
    totals.steps++;
  };

  const forkChecked = (path: number, atLength: number | undefined) => {
    const used = kv.usedCount;
    const queued = kv.pendingCopies.length;
    const { child, copies } = kv.fork(path, atLength);
    const at = atLength ?? model.get(path)!.length;
    const partial = at % ps !== 0;
    if (copies.length !== (partial ? 1 : 0)) fail(`fork at ${at} listed ${copies.length} copies`);
    if (kv.usedCount - used !== (partial ? 1 : 0)) fail(`fork at ${at} took ${kv.usedCount - used} pages`);
    for (const c of copies) {
      if (c.src !== kv.pages(path)[Math.floor((at - 1) / ps)]) fail(`fork at ${at} copies page ${c.src}`);
    }
    const q = kv.pendingCopies;
    if (q.length !== queued + copies.length || (copies.length && q[q.length - 1].dst !== copies[0].dst)) {
      fail(`fork listed ${JSON.stringify(copies)} but queued ${JSON.stringify(q)}`);
    }
    totals.copies += copies.length;
    model.set(child, model.get(path)!.slice(0, at));
    live.push(child);
  };

  const check = (afterStep: boolean) => {
    if (badWrites.length) fail(`shared page written: ${badWrites[0]}`);
    const holders = new Array<number>(config.numPages).fill(0);
    for (const path of live) {
      const tokens = model.get(path)!;
      const pages = kv.pages(path);
      const got = kv.tokens(path);
      if (got.length !== tokens.length || got.some((t, i) => t !== tokens[i])) fail(`path ${path} tokens ${got}, want ${tokens}`);
      if (pages.length !== Math.ceil(tokens.length / ps)) fail(`path ${path}: ${pages.length} pages for ${tokens.length} tokens`);
      if (new Set(pages).size !== pages.length) fail(`path ${path} holds a page twice: ${pages}`);
      for (const p of pages) holders[p]++;
      if (!afterStep) continue;
      let prefix = '';
      for (let i = 0; i < tokens.length; i++) {
        prefix = i === 0 ? `${tokens[0]}` : `${prefix},${tokens[i]}`;
        const held = memory[pages[Math.floor(i / ps)]][i % ps];
        if (held !== prefix) fail(`path ${path} token ${i}: its slot holds the K/V of "${held}", wants "${prefix}"`);
      }
    }
    const free = kv.freeList();
    const onFree = new Array<boolean>(config.numPages).fill(false);
    for (const p of free) {
      if (onFree[p]) fail(`page ${p} twice on the free list ${free}`);
      onFree[p] = true;
    }
    if (kv.freeCount !== free.length) fail(`freeCount ${kv.freeCount} but free list ${free}`);
    let used = 0;
    for (let p = 0; p < config.numPages; p++) {
      if (kv.refCount(p) !== holders[p]) fail(`page ${p}: refCount ${kv.refCount(p)}, held by ${holders[p]} table(s)`);
      if (onFree[p] !== (holders[p] === 0)) fail(`page ${p} held by ${holders[p]} table(s), on free list: ${onFree[p]}`);
      if (holders[p] > 0) used++;
      if (holders[p] > 1) totals.sharedPagesSeen++;
    }
    if (kv.usedCount !== used) fail(`usedCount ${kv.usedCount}, ${used} pages held`);
    if (kv.pagesPeak < Math.max(peak, used)) fail(`pagesPeak ${kv.pagesPeak} < ${Math.max(peak, used)}`);
    peak = kv.pagesPeak;
    const snap = kv.snapshot();
    // A cached page's recorded tokens are the last tokens of the prefixes its slots hold.
    for (const e of afterStep ? (snap.prefix?.entries ?? []) : []) {
      const last = memory[e.page].map((k) => Number(k.split(',').pop()));
      if (last.some((t, i) => t !== e.tokens[i])) fail(`cached page ${e.page} says ${e.tokens}, holds ${memory[e.page]}`);
    }
    return JSON.stringify(snap);
  };

  let state = JSON.stringify(kv.snapshot());
  for (const cmd of cmds) {
    totals.commands++;
    if ((cmd.kind === 'fork' || cmd.kind === 'forkAt') && pendingWrites.length) {
      // The scheduler forks only between steps: the tokens forked over have their K/V written.
      step();
      state = check(true);
    }
    const before = state;
    try {
      switch (cmd.kind) {
        case 'create': {
          const path = kv.createPath();
          model.set(path, []);
          live.push(path);
          break;
        }
        case 'prompt': {
          const { path, reusedTokens } = kv.createPathWithPrefix(cmd.tokens);
          if (reusedTokens % ps !== 0 || reusedTokens >= cmd.tokens.length) fail(`reused ${reusedTokens} of ${cmd.tokens}`);
          totals.prefixHits += reusedTokens / ps;
          model.set(path, cmd.tokens.slice(0, reusedTokens));
          live.push(path);
          const afterCreate = check(false);
          try {
            appendChecked(path, cmd.tokens.slice(reusedTokens));
          } catch (e) {
            if (!(e instanceof PagePoolExhaustedError)) throw e;
            totals.exhausted++;
            if (JSON.stringify(kv.snapshot()) !== afterCreate) fail('exhausted prompt append changed the state');
          }
          break;
        }
        case 'append':
          if (live.length) appendChecked(pick(cmd.at), cmd.tokens);
          break;
        case 'fork':
          if (live.length) forkChecked(pick(cmd.at), undefined);
          break;
        case 'forkAt':
          if (live.length) {
            const path = pick(cmd.at);
            forkChecked(path, cmd.pos % (model.get(path)!.length + 1));
          }
          break;
        case 'step':
          step();
          break;
        case 'free':
          if (live.length) {
            const i = cmd.at % live.length;
            kv.free(live[i]);
            model.delete(live[i]);
            live.splice(i, 1);
          }
          break;
      }
    } catch (e) {
      if (!(e instanceof PagePoolExhaustedError)) throw e;
      totals.exhausted++;
      if (JSON.stringify(kv.snapshot()) !== before) fail(`exhausted ${cmd.kind} changed the state`);
    }
    state = check(cmd.kind === 'step');
  }
  step();
  check(true);
}

describe('KvCache properties', () => {
  it('10,000 random sequences: no leaks, refCounts = holders, no shared write, atomic exhaustion, right K/V', () => {
    fc.assert(
      fc.property(configArb, fc.array(cmdArb, { minLength: 1, maxLength: 30, size: 'medium' }), (config, cmds) => runSequence(config, cmds)),
      { numRuns: 10_000 },
    );
    // The sequences must actually reach the interesting states, or the checks above prove little.
    expect(totals.exhausted).toBeGreaterThan(1000);
    expect(totals.copies).toBeGreaterThan(1000);
    expect(totals.prefixHits).toBeGreaterThan(1000);
    expect(totals.sharedPagesSeen).toBeGreaterThan(1000);
  });
});
