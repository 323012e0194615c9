// Run counts and time limits for the fuzz tests, so the whole folder stays
// within its CI budget (60 s) on a slow shared machine. fast-check prints the
// seed and path of any failure; to replay one, or to fuzz longer locally:
//   WEFT_FUZZ_SEED=<seed> WEFT_FUZZ_PATH=<path> node scripts/test.js fuzz
//   WEFT_FUZZ_SCALE=20 node scripts/test.js fuzz
import type fc from 'fast-check'

const scale = Number(process.env.WEFT_FUZZ_SCALE ?? '1')

/** `numRuns` runs (times WEFT_FUZZ_SCALE), but never longer than `seconds` (times the scale). */
export function budget<T> (numRuns: number, seconds: number): fc.Parameters<T> {
  const seed = process.env.WEFT_FUZZ_SEED
  const path = process.env.WEFT_FUZZ_PATH
  return {
    numRuns: Math.max(1, Math.round(numRuns * scale)),
    interruptAfterTimeLimit: seconds * 1000 * Math.max(1, scale),
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {})
  }
}
