// The statistics every benchmark reports, in one place so a "median" or a
// "p90" means the same thing in every table. Each takes the samples in any
// order and leaves them as they are; with no samples each is NaN (a path
// that measured nothing prints NaN, not a number that looks measured).

function sorted (xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b)
}

/** The middle sample; for an even count, the mean of the middle two. */
export function median (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = sorted(xs)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/**
 * Nearest-rank percentile (p in 0..100): the smallest sample with at least
 * p% of the samples at or below it, so it is always a sample that was seen.
 */
export function percentile (xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = sorted(xs)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

// Loops, not Math.min(...xs): spreading a long sample list can overflow the stack.
export function min (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  let m = xs[0]
  for (const x of xs) if (x < m) m = x
  return m
}

export function max (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  let m = xs[0]
  for (const x of xs) if (x > m) m = x
  return m
}

export function mean (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  return xs.reduce((a, x) => a + x, 0) / xs.length
}
