// Inclusion probabilities of a Gumbel-top-k draw (sampling without replacement), given its threshold.
//
// A Gumbel-top-k draw perturbs every log-probability, key_i = log q_i + G_i with G_i ~ Gumbel(0, 1) independent, and
// keeps the k largest keys (Vieira 2014; Kool, van Hoof & Welling, "Stochastic Beams and Where to Find Them", ICML
// 2019). Call kappa the (k+1)-th largest key: the threshold. Conditional on the keys of all other tokens, token i is
// drawn exactly when key_i > kappa, so
//
//   pi_i(kappa) = P(log q_i + G > kappa) = 1 - exp(-exp(log q_i - kappa))
//
// and sum_{i in S} q_i / pi_i(kappa) * F_i is an unbiased estimate of sum_i q_i F_i: the priority-sampling estimator
// (Duffield, Lund & Thorup, JACM 2007) in the Gumbel form of Kool et al. (2019, section 4; "Estimating gradients for
// discrete random variables by sampling without replacement", ICLR 2020; "Ancestral Gumbel-top-k sampling for
// sampling without replacement", JMLR 2020). Its terms are uncorrelated (DLT 2007, theorem on products of weight
// estimates), which makes sum_{i in S} (1 - pi_i) / pi_i^2 (q_i F_i)^2 an unbiased estimate of its variance
// (test/unit/estimators_enum.test.ts checks both by exact integration over kappa).
//
// When every token that could be drawn was drawn there is no (k+1)-th key: kappa = -Infinity and pi_i = 1.

/**
 * log pi_i(kappa) = log(1 - exp(-exp(logQ - kappa))), in double precision without cancellation: for a tiny
 * exp(logQ - kappa), 1 - exp(-x) is computed as -expm1(-x) (about x), never as 1 - (1 - x).
 * @param logQ natural log of the token's probability under the distribution it was drawn from (<= 0)
 * @param kappa the threshold in the same units (log-probability): the (k+1)-th largest perturbed key, or -Infinity
 */
export function logInclusionProbability(logQ: number, kappa: number): number {
  if (kappa === -Infinity) return 0;
  const x = Math.exp(logQ - kappa);
  // For x > ~37, exp(-x) is below double epsilon next to 1: log(1) = 0 exactly.
  return Math.log(-Math.expm1(-x));
}

/** pi_i(kappa) = 1 - exp(-exp(logQ - kappa)): the probability that the token is among the drawn ones given kappa. */
export function inclusionProbability(logQ: number, kappa: number): number {
  return Math.exp(logInclusionProbability(logQ, kappa));
}

/**
 * The threshold kappa of the first `k` tokens of a draw, from the perturbed keys of the drawn tokens in draw order
 * (largest first) and the key after the last one: the first k of a Gumbel-top-n draw are a Gumbel-top-k draw whose
 * threshold is the (k+1)-th key. `nextKey` is -Infinity when the draw took every drawable token.
 */
export function thresholdOfFirst(k: number, keys: readonly number[], nextKey: number): number {
  if (!Number.isInteger(k) || k < 1 || k > keys.length) throw new RangeError(`thresholdOfFirst: k=${k} outside 1..${keys.length}`);
  return k < keys.length ? keys[k] : nextKey;
}
