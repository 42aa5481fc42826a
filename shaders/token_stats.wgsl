// token_stats: per row of logits, the model distribution's statistics and this step's sampled tokens.
// One workgroup per row; every thread walks the vocabulary with stride WG, so nothing in workgroup memory grows with V.
//
// Pass A (one read of the row): online max m, s = sum exp(x - m), u = sum exp(x - m) * (x - m), and the tempered
//   z = sum exp((x - m) / T); a per-thread top-TOPK list. Merged over the workgroup:
//   lse = m + log s, entropy H = log s - u / s (two non-negative terms: no cancellation), Hnorm = H / ln V.
// Top-k: TOPK rounds of a workgroup argmax over the heads of the per-thread sorted lists (ties: lower id); or
//   (RANK_MERGE) each entry's rank among all lists, with per-thread lists of TOPK_LANE entries and a second read of
//   the row when a thread may have dropped a winner (merge_rank).
// Nucleus (T > 0, topP < 1): bisection over the 32-bit order-preserving key of a logit threshold t, each step one pass
//   computing mass(t) = sum_{x >= t} exp((x - m) / T); keeps the largest t with mass(t) >= topP * z. Each step also
//   snaps the bounds to the nearest logits on either side, so it ends on an exact logit value after at most 32 passes
//   (far fewer when logits are sparse): the nucleus is exactly {x >= t} (ties at the cut all kept). When the top-k
//   list already holds the nucleus (nucleus_from_top) there is no pass at all.
// Pass C: Gumbel-top-k over the nucleus: key = (x - m) / T + g_i, g_i = -log(-log(u_i)), u_i from xxh32(randomBits, i);
//   the nSamples largest keys in order are a draw without replacement from the tempered nucleus distribution q. The
//   same pass sums zq = sum_nucleus exp(a), a = (x - m) / T, and wq = sum_nucleus exp(a) a: q's entropy is
//   Hq = log zq - wq / zq (again two non-negative terms), the sampling entropy the branch controller decides on.
//   The merge keeps one key more than it draws: the (nSamples+1)-th largest key is the draw's threshold kappa, and
//   given kappa a drawn token's inclusion probability is 1 - exp(-q e^-kappa) (priority sampling; Kool et al. 2019).
//   Keys and threshold are written in log-q units (key - log z_nucleus = log q + g); the threshold is -inf when the
//   draw took every drawable token (greedy included: its one token is the point mass).
// T = 0 (greedy): q is the limit of softmax(x / T), a point mass on the largest logit (the lower id among ties, the
//   top-k list's first entry). One token is drawable, whatever nSamples asks; its proposal log-prob is 0 and Hq = 0.
//   No pass C.
//
// Masking: a logit below -3e38 (-inf) is not a token of the distribution: it adds nothing to sums and is never drawn.
// For T > 0, tokens with (x - m) / T < -80 are not drawable either: their tempered probability is below e^-80 of the
// top token's, under f32's normal range, where adapters differ (flushing denormals or not); dropping them changes
// the distribution by less than V * e^-80 and keeps every adapter's candidate set the same.
// Logits must not be NaN or +inf.
override WG: u32 = 64;          // threads per row, a power of two
override TOPK: u32 = 20;        // <= LIST_CAP (20)
// Entries a thread keeps in pass A's top-k list, <= TOPK; below TOPK only with RANK_MERGE (merge_rank's overflow).
override TOPK_LANE: u32 = 20;
override MAX_SAMPLES: u32 = 8;  // <= LIST_CAP (20)
// Keys pass C keeps, MAX_SAMPLES + 1 (the draws and the threshold after them), or fewer for a pipeline that only
// serves rows drawing at most DRAW_LIST - 1 tokens (kernels/token_stats.ts: 2, for steps where no path forks).
override DRAW_LIST: u32 = 9;
// Record layout (src/sample/stats_record.ts), in 32-bit words.
override STRIDE: u32;
override OFF_MAX: u32;
override OFF_LSE: u32;
override OFF_H: u32;
override OFF_HNORM: u32;
override OFF_CONF: u32;
override OFF_COUNT: u32;
override OFF_NUCLEUS: u32;
override OFF_TEMP: u32;
override OFF_QH: u32;
override OFF_QHNORM: u32;
override OFF_THRESH: u32;
override OFF_TOP_IDS: u32;
override OFF_TOP_LP: u32;
override OFF_S_IDS: u32;
override OFF_S_LP: u32;
override OFF_S_Q: u32;
override OFF_S_KEY: u32;

const CAP: u32 = 21u;                 // private list length: LIST_CAP in stats_record.ts + 1 (the key after the draws)
const NONE: u32 = 0xffffffffu;        // NO_TOKEN
const LOWEST: f32 = -0x1.fffffep+127f;  // -FLT_MAX: the list sentinel; masked logits rank here too (by id)
const MASKED: f32 = -3.0e38;
const CUT: f32 = 80.0;
const NEG_INF: u32 = 0xff800000u;     // written as bits: no infinity is produced by float arithmetic for sentinels
const POS_INF: u32 = 0x7f800000u;

@group(0) @binding(0) var<uniform> params: Params;                 // rows, vocab
@group(0) @binding(1) var<storage, read> logits: array<f32>;       // (rows, vocab) f32
@group(0) @binding(2) var<storage, read> sampling: array<u32>;     // (rows, 4) [T f32, topP f32, randomBits, nSamples]
@group(0) @binding(3) var<storage, read_write> stats: array<u32>;  // (rows, STRIDE) f32/u32 records

var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;
var<workgroup> red_c: array<f32, WG>;
var<workgroup> red_d: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
// The rank merge's copy of every thread's list (thread t's entry j at t * CAP + j); sized 1 when the merge is the
// tree (MERGE_T = 1), so a 256-thread workgroup does not hold 256 lists for nothing.
override RANK_MERGE: bool = false;
override MERGE_T: u32 = 1u;     // WG when RANK_MERGE, else 1
var<workgroup> ml_v: array<f32, MERGE_T * CAP>;
var<workgroup> ml_i: array<u32, MERGE_T * CAP>;
var<workgroup> ml_flag: atomic<u32>;
var<workgroup> ml_over: u32;
var<workgroup> win_i: array<u32, CAP>;   // merged list winners, best first
var<workgroup> win_v: array<f32, CAP>;   // their values (logits for top-k, perturbed keys for the draw)
var<workgroup> row_cfg: vec4<u32>;       // the row's sampling words, loaded once and read uniformly
var<workgroup> bis_lo: u32;
var<workgroup> bis_hi: u32;
var<workgroup> bis_mass: f32;

// Each thread's sorted (value desc, id asc) list: top-k logits in pass A, Gumbel keys in pass C.
var<private> lv: array<f32, CAP>;
var<private> li: array<u32, CAP>;

fn better(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  return va > vb || (va == vb && ia < ib);
}

fn list_reset() {
  for (var j = 0u; j < CAP; j++) { lv[j] = LOWEST; li[j] = NONE; }
  lt_v = LOWEST;
  lt_i = NONE;
}

// Insertion by a fixed-length compare-and-swap sweep: the displaced entry moves down the sorted list. Every access to
// the lists uses a constant index (after unrolling), so the compiler keeps them in registers: one dynamic index
// anywhere (the list's last entry at a run-time length, the merge's head) puts both arrays in indexed scratch memory,
// which llvmpipe reads and writes one lane at a time and which made the two passes over V ~3x slower there. The
// entry at n - 1, the bar a value must beat, is kept apart in (lt_v, lt_i) for the same reason. The constant trip
// count also keeps data-dependent loop iterations out of llvmpipe's per-invocation loop budget (see token_stats.ts).
var<private> lt_v: f32;
var<private> lt_i: u32;

fn list_insert(v: f32, id: u32, n: u32) {
  if (!better(v, id, lt_v, lt_i)) { return; }
  var cv = v;
  var ci = id;
  for (var j = 0u; j < CAP; j++) {
    if (j < n && better(cv, ci, lv[j], li[j])) {
      let tv = lv[j];
      let ti = li[j];
      lv[j] = cv;
      li[j] = ci;
      cv = tv;
      ci = ti;
    }
    if (j + 1u == n) {
      lt_v = lv[j];
      lt_i = li[j];
    }
  }
}

// n rounds of a workgroup argmax over the list heads; winners land in win_i. n must be workgroup-uniform.
// RANK_MERGE: by the entries' ranks instead (merge_rank).
fn merge_lists(tid: u32, n: u32) {
  if (RANK_MERGE) {
    _ = merge_rank(tid, n, n);
    return;
  }
  var head = 0u;
  for (var r = 0u; r < n; r++) {
    var v = LOWEST;
    var id = NONE;
    // lv[head] by a constant-index sweep (see list_insert); head < n <= CAP.
    for (var j = 0u; j < CAP; j++) {
      if (j == head && j < n) { v = lv[j]; id = li[j]; }
    }
    red_a[tid] = v;
    red_i[tid] = id;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st / 2u) {
      if (tid < st && better(red_a[tid + st], red_i[tid + st], red_a[tid], red_i[tid])) {
        red_a[tid] = red_a[tid + st];
        red_i[tid] = red_i[tid + st];
      }
      workgroupBarrier();
    }
    let w = red_i[0];
    if (tid == 0u) {
      win_i[r] = w;
      win_v[r] = red_a[0];
    }
    if (head < n && id == w && w != NONE) { head++; }
    workgroupBarrier();
  }
}

// The same n winners as the tree's rounds, by rank: every thread counts, for each of its list's first len entries,
// the published entries of all lists that are better under better() (a total order on (value, id) pairs: ids are
// unique but for NONE), and an entry of rank r < n is the r-th winner. Two barriers and WG x len compares per thread
// instead of n rounds of a workgroup argmax: for llvmpipe running every workgroup on the submitting thread
// (kernels/token_stats.ts rankMergeDefault). Lists shorter than n (len < n: pass A's TOPK_LANE) may have dropped a
// winner: only a full list (its last entry a token) can, and only if that last entry ranks below n - 1 (an entry it
// dropped is worse than it, so ranks at least one below it). The merge then returns true (workgroup-uniform) and its
// winners are not to be used. Entries of id NONE are sentinels, never winners; slots no token fills keep
// (LOWEST, NONE), as the tree leaves them.
fn merge_rank(tid: u32, n: u32, len: u32) -> bool {
  // Constant indices into the private lists (see list_insert).
  for (var j = 0u; j < CAP; j++) {
    if (j < len) {
      ml_v[tid * CAP + j] = lv[j];
      ml_i[tid * CAP + j] = li[j];
    }
  }
  if (tid == 0u) {
    for (var r = 0u; r < CAP; r++) {
      win_i[r] = NONE;
      win_v[r] = LOWEST;
    }
    atomicStore(&ml_flag, 0u);
  }
  workgroupBarrier();
  var rank: array<u32, CAP>;
  for (var t = 0u; t < WG; t++) {
    for (var q = 0u; q < len; q++) {
      let ov = ml_v[t * CAP + q];
      let oi = ml_i[t * CAP + q];
      for (var j = 0u; j < CAP; j++) {
        if (j < len && better(ov, oi, lv[j], li[j])) { rank[j] += 1u; }
      }
    }
  }
  for (var j = 0u; j < CAP; j++) {
    if (j < len && li[j] != NONE && rank[j] < n) {
      win_i[rank[j]] = li[j];
      win_v[rank[j]] = lv[j];
    }
    if (j + 1u == len && li[j] != NONE && rank[j] + 1u < n) { atomicOr(&ml_flag, 1u); }
  }
  workgroupBarrier();
  if (tid == 0u) { ml_over = atomicLoad(&ml_flag); }
  return workgroupUniformLoad(&ml_over) != 0u;
}

fn sum_u32(tid: u32, v: u32) -> u32 {
  red_i[tid] = v;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st / 2u) {
    if (tid < st) { red_i[tid] = red_i[tid] + red_i[tid + st]; }
    workgroupBarrier();
  }
  let out = red_i[0];
  workgroupBarrier();
  return out;
}

// The online softmax accumulator: max, sum exp(x-m), sum exp(x-m)(x-m), sum exp((x-m)/T).
struct Acc { m: f32, s: f32, u: f32, z: f32 }

// b folded into a (either may be empty: s == 0). Terms whose scale underflows are dropped before multiplying, so
// a huge (x - m) never meets a zero weight (inf * 0).
fn acc_merge(a: Acc, b: Acc) -> Acc {
  if (b.s == 0.0) { return a; }
  if (a.s == 0.0) { return b; }
  let m = max(a.m, b.m);
  let da = a.m - m;
  let db = b.m - m;
  let ea = exp(da);
  let eb = exp(db);
  var u = 0.0;
  if (ea > 0.0) { u += ea * (a.u + da * a.s); }
  if (eb > 0.0) { u += eb * (b.u + db * b.s); }
  return Acc(m, a.s * ea + b.s * eb, u, a.z * exp(da * inv_t) + b.z * exp(db * inv_t));
}

// XXH32 of the 4-byte little-endian word w with seed `seed` (the xxHash spec's short-input path): integer math only,
// so every adapter and the host reference get the same bits.
fn xxh32_word(seed: u32, w: u32) -> u32 {
  var h = seed + 374761393u + 4u;          // PRIME32_5 + length
  h = h + w * 3266489917u;                 // PRIME32_3
  h = ((h << 17u) | (h >> 15u)) * 668265263u; // rotl 17, PRIME32_4
  h = (h ^ (h >> 15u)) * 2246822519u;      // PRIME32_2
  h = (h ^ (h >> 13u)) * 3266489917u;      // PRIME32_3
  return h ^ (h >> 16u);
}

// -log(u) for u = (2k + 1) / 2^24, k the top 23 bits of h: u is exact in f32 and never 0 or 1. Near u = 1 the
// result is tiny and log(u) (absolute error 2^-21 there) would lose it, so -log(1 - w) = 2 atanh(w / (2 - w)) by its
// series: z <= 1/3, and after 8 terms the first dropped one is z^16/17 < 2^-28 of the sum.
fn neg_log_unit(h: u32) -> f32 {
  let u = f32(2u * (h >> 9u) + 1u) * (1.0 / 16777216.0);
  if (u < 0.5) { return -log(u); }
  let w = 1.0 - u;
  let z = w / (2.0 - w);
  let z2 = z * z;
  var p = 1.0 / 15.0;
  p = p * z2 + 1.0 / 13.0;
  p = p * z2 + 1.0 / 11.0;
  p = p * z2 + 1.0 / 9.0;
  p = p * z2 + 1.0 / 7.0;
  p = p * z2 + 1.0 / 5.0;
  p = p * z2 + 1.0 / 3.0;
  p = p * z2 + 1.0;
  return 2.0 * z * p;
}

fn gumbel(seed: u32, i: u32) -> f32 {
  return -log(neg_log_unit(xxh32_word(seed, i)));
}

// Order-preserving u32 key of an f32 (not NaN): larger float, larger key.
fn f2key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn key2f(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

var<private> acc: Acc;
var<private> inv_t: f32;   // 1 / T, 0 when greedy

// One logit into this thread's top-k list and online accumulator. Masked logits join the top-k list only.
fn visit_a(x: f32, i: u32) {
  list_insert(max(x, LOWEST), i, TOPK_LANE);
  if (x < MASKED) { return; }
  if (acc.s == 0.0) {
    acc = Acc(x, 1.0, 0.0, 1.0);
  } else if (x > acc.m) {
    let d = acc.m - x;
    let r = exp(d);
    if (r > 0.0) { acc.u = r * (acc.u + d * acc.s); } else { acc.u = 0.0; }
    acc.s = acc.s * r + 1.0;
    acc.z = acc.z * exp(d * inv_t) + 1.0;
    acc.m = x;
  } else {
    let d = x - acc.m;
    let e = exp(d);
    if (e > 0.0) {
      acc.s += e;
      acc.u += e * d;
    }
    acc.z += exp(d * inv_t);
  }
}

var<private> pr_mass: f32;   // tempered mass of the candidates at or above the threshold
var<private> pr_above: f32;  // the smallest candidate logit at or above it
var<private> pr_below: f32;  // the largest candidate logit below it

// One logit into this thread's bisection probe of threshold t (nothing past the row's end or below the cut).
fn probe(base: u32, i: u32, V: u32, t: f32, cut: f32, m: f32) {
  if (i >= V) { return; }
  let x = logits[base + i];
  if (x < MASKED || x < cut) { return; }
  if (x >= t) {
    pr_mass += exp((x - m) * inv_t);
    pr_above = min(pr_above, x);
  } else {
    pr_below = max(pr_below, x);
  }
}

var<private> q_z: f32;  // this thread's sum over the nucleus of exp(a), a = (x - m) / T
var<private> q_w: f32;  // ... of exp(a) a

// Logit i into this thread's draw list and q sums if it is in the nucleus; returns 1 if it is (to count the nucleus).
// The list keeps DRAW_LIST keys whatever the row's nSamples: a constant length shortens the insertion sweep at compile
// time (llvmpipe runs every step of it for every logit), and the merge takes only the first ns + 1. The first ns + 1
// keys of a sorted list are the same whatever its length beyond them, so DRAW_LIST changes no result.
fn visit_c(base: u32, i: u32, V: u32, tau: f32, m: f32, seed: u32) -> u32 {
  if (i >= V) { return 0u; }
  let x = logits[base + i];
  if (x < MASKED || x < tau) { return 0u; }
  let a = (x - m) * inv_t;
  let e = exp(a);
  q_z += e;
  q_w += e * a;
  list_insert(a + gumbel(seed, i), i, DRAW_LIST);
  return 1u;
}

// Thread 0: the bisection's starting bounds. The top-k list (win_i) usually settles the nucleus outright: when its
// cumulative tempered mass reaches the goal topP * z at a logit strictly above a later entry's (or the list runs out
// of candidates after it), every token at or above that logit is in the list, so the cut and its mass are exact and
// no pass over V is needed (a peaked distribution, the common case). Otherwise the tokens strictly above the last
// entry are all listed and short of the goal, which lowers the upper bound.
fn nucleus_from_top(base: u32, cut: f32, m: f32, goal: f32, z: f32) {
  bis_lo = f2key(cut);
  bis_hi = f2key(m) + 1u;
  bis_mass = z;
  var cum = 0.0;
  var cut_x = 0.0;
  var last_x = 0.0;
  var found = false;
  for (var j = 0u; j < TOPK; j++) {
    let id = win_i[j];
    var x = LOWEST;
    if (id != NONE) { x = logits[base + id]; }
    if (x < MASKED || x < cut) {
      // Every candidate is listed: the nucleus ends at the goal, or holds all of them if rounding kept it short.
      if (j > 0u) { settle(select(last_x, cut_x, found), cum); }
      return;
    }
    if (found && x < cut_x) {
      settle(cut_x, cum);
      return;
    }
    cum += exp((x - m) * inv_t);
    last_x = x;
    if (!found && cum >= goal) {
      found = true;
      cut_x = x;
    }
  }
  if (!found) { bis_hi = f2key(last_x) + 1u; }
}

fn settle(x: f32, mass: f32) {
  bis_lo = f2key(x);
  bis_hi = bis_lo + 1u;
  bis_mass = mass;
}

fn put_f(i: u32, v: f32) { stats[i] = bitcast<u32>(v); }

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x;
  let V = params.vocab;
  let base = row * V;
  let out = row * STRIDE;
  if (tid == 0u) {
    row_cfg = vec4<u32>(sampling[row * 4u], sampling[row * 4u + 1u], sampling[row * 4u + 2u], sampling[row * 4u + 3u]);
  }
  let cfg = workgroupUniformLoad(&row_cfg);
  let T = bitcast<f32>(cfg.x);
  let top_p = bitcast<f32>(cfg.y);
  let seed = cfg.z;
  let ns = min(cfg.w, min(MAX_SAMPLES, DRAW_LIST - 1u));
  let greedy = !(T > 0.0);
  inv_t = select(1.0 / T, 0.0, greedy);

  // ---- pass A
  list_reset();
  acc = Acc(LOWEST, 0.0, 0.0, 0.0);
  for (var i = tid; i < V; i += WG) {
    visit_a(logits[base + i], i);
  }
  red_a[tid] = acc.m;
  red_b[tid] = acc.s;
  red_c[tid] = acc.u;
  red_d[tid] = acc.z;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st / 2u) {
    if (tid < st) {
      let o = acc_merge(Acc(red_a[tid], red_b[tid], red_c[tid], red_d[tid]),
                        Acc(red_a[tid + st], red_b[tid + st], red_c[tid + st], red_d[tid + st]));
      red_a[tid] = o.m;
      red_b[tid] = o.s;
      red_c[tid] = o.u;
      red_d[tid] = o.z;
    }
    workgroupBarrier();
  }
  let m = red_a[0];
  let s = red_b[0];
  let u = red_c[0];
  let z = red_d[0];
  let log_s = log(s);
  let empty = s == 0.0; // every logit masked: no distribution
  workgroupBarrier();

  if (TOPK_LANE < TOPK) {
    // Short lists (RANK_MERGE): on the rare overflow, one more pass over the row with full lists.
    if (merge_rank(tid, TOPK, TOPK_LANE)) {
      list_reset();
      for (var i = tid; i < V; i += WG) {
        list_insert(max(logits[base + i], LOWEST), i, TOPK);
      }
      _ = merge_rank(tid, TOPK, TOPK);
    }
  } else {
    merge_lists(tid, TOPK);
  }
  if (tid == 0u) {
    if (empty) {
      stats[out + OFF_MAX] = NEG_INF;
      stats[out + OFF_LSE] = NEG_INF;
      put_f(out + OFF_H, 0.0);
      put_f(out + OFF_HNORM, 0.0);
      stats[out + OFF_CONF] = POS_INF;
    } else {
      let h = log_s - u / s;
      put_f(out + OFF_MAX, m);
      put_f(out + OFF_LSE, m + log_s);
      put_f(out + OFF_H, h);
      put_f(out + OFF_HNORM, select(h / log(f32(V)), 0.0, V == 1u));
    }
    var conf = 0.0;
    var k = 0u;
    for (var j = 0u; j < TOPK; j++) {
      let id = win_i[j];
      stats[out + OFF_TOP_IDS + j] = id;
      if (id == NONE || empty) {
        stats[out + OFF_TOP_LP + j] = NEG_INF;
      } else {
        // (x - m) - log s rather than x - lse: no rounding of lse's large part into a small log-prob.
        let lp = (logits[base + id] - m) - log_s;
        put_f(out + OFF_TOP_LP + j, lp);
        conf -= lp;
        k++;
      }
    }
    if (!empty) { put_f(out + OFF_CONF, conf / f32(max(k, 1u))); }
    stats[out + OFF_TEMP] = cfg.x;
  }

  // ---- sampling
  var count = 0u;
  var z_nuc = z;
  var hq = 0.0;
  let ns_keep = ns + 1u; // the draws and the key after them (the threshold); ns < DRAW_LIST <= CAP
  if (greedy) {
    // The point mass: win_i[0] still holds the top-k list's first entry (the largest logit, lower id among ties).
    count = select(1u, 0u, empty || ns == 0u);
  } else if (ns > 0u) {
    let cut = select(m - CUT * T, LOWEST, greedy);
    var tau = cut;
    if (!greedy && top_p < 1.0) {
      if (tid == 0u) { nucleus_from_top(base, cut, m, top_p * z, z); }
      // At most 32 halvings of the key range; 40 bounds the loop whatever rounding does.
      for (var it = 0u; it < 40u; it++) {
        let lo = workgroupUniformLoad(&bis_lo);
        let hi = workgroupUniformLoad(&bis_hi);
        if (hi - lo <= 1u) { break; }
        let mid = lo + (hi - lo) / 2u;
        let t = key2f(mid);
        pr_mass = 0.0;
        pr_above = -LOWEST;
        pr_below = LOWEST;
        // Four logits per iteration: these passes dominate a thread's loop count (LOOP_BUDGET in token_stats.ts).
        for (var i = tid; i < V; i += 4u * WG) {
          probe(base, i, V, t, cut, m);
          probe(base, i + WG, V, t, cut, m);
          probe(base, i + 2u * WG, V, t, cut, m);
          probe(base, i + 3u * WG, V, t, cut, m);
        }
        red_a[tid] = pr_above;
        red_b[tid] = pr_mass;
        red_c[tid] = pr_below;
        workgroupBarrier();
        for (var st = WG / 2u; st > 0u; st = st / 2u) {
          if (tid < st) {
            red_a[tid] = min(red_a[tid], red_a[tid + st]);
            red_b[tid] = red_b[tid] + red_b[tid + st];
            red_c[tid] = max(red_c[tid], red_c[tid + st]);
          }
          workgroupBarrier();
        }
        // Snap the bounds to the logits next to the threshold: mass(t) is constant between logits, so the search
        // ends as soon as no logit lies strictly inside (few passes for a small vocabulary). The clamps keep
        // progress when -0 and +0 (equal, different keys) meet.
        if (tid == 0u) {
          if (red_b[0] >= top_p * z) {
            bis_lo = min(max(mid, f2key(red_a[0])), hi - 1u);
            bis_mass = red_b[0];
          } else if (red_c[0] > LOWEST) {
            bis_hi = max(min(mid, f2key(red_c[0]) + 1u), lo + 1u);
          } else {
            bis_hi = mid;
          }
        }
      }
      tau = max(key2f(workgroupUniformLoad(&bis_lo)), cut);
      z_nuc = workgroupUniformLoad(&bis_mass);
    }

    // ---- pass C
    list_reset();
    q_z = 0.0;
    q_w = 0.0;
    var n = 0u;
    for (var i = tid; i < V; i += WG) {
      n += visit_c(base, i, V, tau, m, seed);
    }
    count = sum_u32(tid, n);
    red_a[tid] = q_z;
    red_b[tid] = q_w;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st = st / 2u) {
      if (tid < st) {
        red_a[tid] = red_a[tid] + red_a[tid + st];
        red_b[tid] = red_b[tid] + red_b[tid + st];
      }
      workgroupBarrier();
    }
    // zq >= 1 (the largest logit is in every nucleus: a = 0) and wq <= 0.
    if (count > 0u) { hq = log(red_a[0]) - red_b[0] / red_a[0]; }
    workgroupBarrier();
    merge_lists(tid, ns_keep);
  }

  if (tid == 0u) {
    let log_z = log(z_nuc);
    var drawn = 0u;
    let n_draw = min(ns, count); // greedy: at most the one token of the point mass
    for (var j = 0u; j < MAX_SAMPLES; j++) {
      var id = NONE;
      if (j < n_draw) { id = win_i[j]; }
      stats[out + OFF_S_IDS + j] = id;
      if (id == NONE) {
        stats[out + OFF_S_LP + j] = NEG_INF;
        stats[out + OFF_S_Q + j] = NEG_INF;
        stats[out + OFF_S_KEY + j] = NEG_INF;
      } else {
        let d = logits[base + id] - m;
        put_f(out + OFF_S_LP + j, d - log_s);
        put_f(out + OFF_S_Q + j, select(d * inv_t - log_z, 0.0, greedy));
        put_f(out + OFF_S_KEY + j, select(win_v[j] - log_z, 0.0, greedy));
        drawn++;
      }
    }
    if (greedy || n_draw >= count) {
      stats[out + OFF_THRESH] = NEG_INF;
    } else {
      put_f(out + OFF_THRESH, win_v[n_draw] - log_z);
    }
    stats[out + OFF_COUNT] = drawn;
    stats[out + OFF_NUCLEUS] = count;
    put_f(out + OFF_QH, hq);
    put_f(out + OFF_QHNORM, select(hq / log(f32(V)), 0.0, V == 1u));
  }
}
