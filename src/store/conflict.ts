// Which existing key a new lease would collide with. A lease is named by its
// key (flannel's MakeSubnetKey), but a dual-stack key names two subnets: two
// nodes that raced for the same IPv4 subnet with different IPv6 ones (or the
// other way round) write different keys, and flannel lets both in. The
// embedded stores check this in the create's transaction; for IPv4-only keys
// it is the plain "is the key taken" check it always was.
import { equal, makeSubnetKey, parseLeaseKey } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { equal6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { hasIPv4 } from '../subnet/lease'

export function conflictingKey (keys: Iterable<string>, subnet: Ip4Net, subnet6?: Ip6Net): string | undefined {
  const own = makeSubnetKey(subnet, subnet6)
  const v4 = hasIPv4({ subnet, subnet6 })
  for (const k of keys) {
    if (k === own) return k
    const p = parseLeaseKey(k)
    if (p === undefined) continue
    if (v4 && hasIPv4(p) && equal(p.subnet, subnet)) return k
    if (subnet6 !== undefined && p.subnet6 !== undefined && equal6(p.subnet6, subnet6)) return k
  }
  return undefined
}
