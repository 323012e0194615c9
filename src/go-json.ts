// How Go's encoding/json finds a struct field's value in a JSON object, which
// is how flannel reads every document weft shares with it: net-conf, lease
// values and each backend's BackendData ({"VNI":1,"VtepMAC":"..."}).
// - keys match field names case-insensitively (Unicode simple case folding)
// - keys are applied in document order, so when several keys match one
//   field, the last one wins, whatever its case: Go prefers an exact match
//   only when choosing between two *fields* (golang/go#43664, #11673)
// - keys that match no field are ignored

// For the ASCII field names flannel has, Go's folding is ASCII
// case-insensitivity plus two oddities: KELVIN SIGN folds to k (toLowerCase
// already does that) and LONG S to s.
function fold (s: string): string {
  return s.toLowerCase().replace(/\u017f/g, 's')
}

/** The value Go would decode into the struct field `name` of `obj`, or undefined if no key matches it. */
export function field (obj: Record<string, unknown>, name: string): unknown {
  const want = fold(name)
  let found: unknown
  for (const k of Object.keys(obj)) {
    if (fold(k) === want) found = obj[k]
  }
  return found
}
