// Indices into the Float64Array of counters every Io handle shares with JS.
// They mirror `enum weft_counter` in native/src/weft.h; a test checks that
// this list and the addon's `counterNames` agree name by name.
export const COUNTER_NAMES = [
  'rxPackets', 'rxBytes', 'rxSyscalls', 'rxBatches', 'rxEagain', 'rxDropTruncated', 'rxDropError',
  'rxGroSegments', 'txPackets', 'txBytes', 'txSyscalls', 'txBatches', 'txEagain', 'txDropTooBig',
  'txDropUnreachable', 'txDropBadSlot', 'txDropBadDest', 'txDropError', 'txGsoSegments', 'lastErrno',
  'rxSuperPackets', 'rxCsumFinished', 'txSegmented', 'txDropBadGso', 'txGsoRefused', 'txCoalesced', 'txWritev',
  'txCsumPartial', 'rxCsumRemote'
] as const

export type CounterName = typeof COUNTER_NAMES[number]
export type CounterSnapshot = Record<CounterName, number>

export const C = Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i])) as Record<CounterName, number>

export function snapshot (counters: Float64Array): CounterSnapshot {
  const out = {} as CounterSnapshot
  for (let i = 0; i < COUNTER_NAMES.length; i++) out[COUNTER_NAMES[i]] = counters[i]
  return out
}
