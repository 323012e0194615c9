// The privilege check's decisions, from made-up facts: no root needed. The
// real thing, a daemon as uid 65534, is in test/security/unprivileged.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backendNeeds } from '../../src/daemon/privileges'
import { checkPrivileges, parseCredentials, PrivilegeError, privilegeProblems, requiredCapabilities } from '../../src/kernel/privileges'
import type { PrivilegeFacts } from '../../src/kernel/privileges'

const ADMIN_RAW = 0x3000n
const ALL = 0x1ffffffffffn

function facts (o: Partial<PrivilegeFacts> & { uid?: number, eff?: bigint, amb?: bigint } = {}): PrivilegeFacts {
  return {
    creds: { uid: o.uid ?? 65534, effective: o.eff ?? ADMIN_RAW, ambient: o.amb ?? ADMIN_RAW },
    tun: o.tun ?? { ok: true },
    unprivilegedPortStart: o.unprivilegedPortStart ?? 1024,
    forwarding: o.forwarding ?? { value: '1', writable: { ok: true } }
  }
}

const vxlan = { tun: true, rawSocket: false, udpPort: 8472 }

test('root with every capability, and a user with CAP_NET_ADMIN and CAP_NET_RAW ambient, lack nothing', () => {
  assert.deepEqual(privilegeProblems(vxlan, facts({ uid: 0, eff: ALL, amb: 0n })), [])
  assert.deepEqual(privilegeProblems({ tun: true, rawSocket: true }, facts()), [])
  assert.doesNotThrow(() => checkPrivileges(vxlan, facts()))
})

test('a missing capability is named, with why it is needed and how to grant it', () => {
  const f = facts({ eff: 0x2000n, amb: 0x2000n })
  assert.throws(() => checkPrivileges(vxlan, f), (e: unknown) => {
    assert.ok(e instanceof PrivilegeError)
    assert.equal(e.code, 'EPRIVILEGE')
    assert.deepEqual(e.capabilities, ['CAP_NET_ADMIN'])
    assert.match(e.message, /^weft run \(uid 65534\) cannot work here: CAP_NET_ADMIN is missing \(to create the TUN device/)
    assert.match(e.message, /AmbientCapabilities=CAP_NET_ADMIN \(/)
    assert.match(e.message, /setpriv --inh-caps=\+net_admin --ambient-caps=\+net_admin/)
    return true
  })
})

test('a capability a user holds but not as an ambient one is a problem: the ip and iptables children would lose it', () => {
  const p = privilegeProblems(vxlan, facts({ eff: ADMIN_RAW, amb: 0n }))
  assert.deepEqual(p.map((x) => x.capability), ['CAP_NET_ADMIN'])
  assert.match(p[0]!.message, /effective but not ambient/)
  // the raw socket is opened by weft itself: effective is enough for CAP_NET_RAW
  assert.deepEqual(privilegeProblems({ tun: true, rawSocket: true }, facts({ eff: ADMIN_RAW, amb: 0x1000n })), [])
  // root's children get the bounding set back: ambient does not matter there
  assert.deepEqual(privilegeProblems(vxlan, facts({ uid: 0, eff: ADMIN_RAW, amb: 0n })), [])
})

test('CAP_NET_RAW only for ipip, CAP_NET_BIND_SERVICE only for a port below ip_unprivileged_port_start', () => {
  assert.deepEqual(requiredCapabilities(backendNeeds({ type: 'ipip', directRouting: false }), facts()), ['CAP_NET_ADMIN', 'CAP_NET_RAW'])
  assert.deepEqual(requiredCapabilities(backendNeeds({ type: 'host-gw' }), facts()), ['CAP_NET_ADMIN'])
  assert.deepEqual(requiredCapabilities(backendNeeds({ type: 'udp', port: 8285 }), facts()), ['CAP_NET_ADMIN'])
  assert.deepEqual(requiredCapabilities(backendNeeds({ type: 'udp', port: 853 }), facts()), ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE'])
  assert.deepEqual(requiredCapabilities(backendNeeds({ type: 'udp', port: 853 }), facts({ unprivilegedPortStart: 0 })), ['CAP_NET_ADMIN'])
  const p = privilegeProblems({ tun: true, rawSocket: false, udpPort: 853 }, facts())
  assert.equal(p.length, 1)
  assert.match(p[0]!.message, /^CAP_NET_BIND_SERVICE is missing \(to bind UDP port 853 \(below net\.ipv4\.ip_unprivileged_port_start, 1024\)\)$/)
})

test('/dev/net/tun: missing, or not open to our user, is said in those words (no capability cures a file mode)', () => {
  const gone = privilegeProblems(vxlan, facts({ tun: { ok: false, code: 'ENOENT' } }))
  assert.deepEqual(gone.map((p) => p.message), ['/dev/net/tun is missing: load the tun module (modprobe tun), or give the container the device'])
  const closed = privilegeProblems(vxlan, facts({ tun: { ok: false, code: 'EACCES', mode: 0o20600, uid: 0 } }))
  assert.equal(closed[0]?.capability, undefined)
  assert.match(closed[0]!.message, /EACCES; it is mode 0600, owner uid 0/)
  assert.deepEqual(privilegeProblems(backendNeeds({ type: 'host-gw' }), facts({ tun: { ok: false, code: 'ENOENT' } })), [], 'host-gw opens no TUN device')
})

test('ip_forward: a right value is enough; a wrong one we cannot write names the sysctl to set', () => {
  assert.deepEqual(privilegeProblems(vxlan, facts({ forwarding: { value: '1', writable: { ok: false, code: 'EROFS' } } })), [])
  assert.deepEqual(privilegeProblems(vxlan, facts({ forwarding: { value: '0', writable: { ok: true } } })), [])
  const p = privilegeProblems(vxlan, facts({ forwarding: { value: '0', writable: { ok: false, code: 'EROFS' } } }))
  assert.deepEqual(p.map((x) => x.message), ['net.ipv4.ip_forward is 0 and this process cannot change it (EROFS): set it before starting weft, as root: sysctl -w net.ipv4.ip_forward=1'])
})

test('credentials come from /proc/<pid>/status: the effective uid, CapEff and CapAmb (absent before Linux 4.3)', () => {
  const status = 'Name:\tnode\nUid:\t1000\t65534\t65534\t65534\nGid:\t1\t1\t1\t1\nCapInh:\t0000000000003000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapBnd:\t0000000000003000\nCapAmb:\t0000000000001000\n'
  assert.deepEqual(parseCredentials(status), { uid: 65534, effective: 0x3000n, ambient: 0x1000n })
  assert.deepEqual(parseCredentials(status.replace(/^CapAmb.*\n/m, '')), { uid: 65534, effective: 0x3000n, ambient: 0n })
})
