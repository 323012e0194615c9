// The outside-path fuzzers' accounting check: the drops a batch counted
// must be the datagrams it did not deliver, each under a reason it really
// has. A datagram may have several true reasons and the node counts one, so
// this is a bipartite matching of datagrams to counted drops.

/** Can each dropped datagram (its set of true reasons) be given one counted reason it really has? */
export function reasonsMatch (sets: Array<Set<string>>, counted: Record<string, number>): boolean {
  const slots = Object.entries(counted).flatMap(([r, n]) => Array<string>(n).fill(r))
  if (slots.length !== sets.length) return false
  const owner = new Array<number>(slots.length).fill(-1)
  const place = (i: number, seen: boolean[]): boolean => {
    for (let j = 0; j < slots.length; j++) {
      if (seen[j] || !sets[i].has(slots[j])) continue
      seen[j] = true
      if (owner[j] < 0 || place(owner[j], seen)) { owner[j] = i; return true }
    }
    return false
  }
  return sets.every((_, i) => place(i, new Array<boolean>(slots.length).fill(false)))
}
