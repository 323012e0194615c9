// flannel compatibility of the etcd store, against a real etcd and checked
// with etcdctl, the tool operators use: the bytes and keys flanneld would
// write, leases written by hand the way flannel's docs say, bad entries,
// an unreachable or frozen etcd, a watch across an etcd restart, TLS with
// client certificates, and username/password auth.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import net from 'node:net'
import { formatCidr, parseCidr } from '../../src/packet/net'
import type { Ip4Net } from '../../src/packet/net'
import { formatCidr6, parseCidr6 } from '../../src/packet/net6'
import type { LeaseAttrs } from '../../src/subnet/lease'
import { parseIp4 } from '../../src/packet/ip'
import { CONFIG_NOT_FOUND_HINT, EtcdStore } from '../../src/store/etcd/etcd-store'
import type { EtcdStoreOptions } from '../../src/store/etcd/etcd-store'
import { SUBNET_TTL_SECONDS, StoreError } from '../../src/store/store'
import type { Store, WatchBatch } from '../../src/store/store'
import { etcdctl, makeTlsFiles, startEtcd } from '../../lab/etcd'
import type { EtcdHandle, TlsFiles } from '../../lab/etcd'
import { toolSkipReason } from '../../lab/skip'
import { waitFor } from '../../lab/wait'

const skip = toolSkipReason('etcd', 'etcdctl')
const PREFIX = '/coreos.com/network'
const S1 = parseCidr('10.244.1.0/24')
const S2 = parseCidr('10.244.2.0/24')
const S3 = parseCidr('10.244.3.0/24')

const vxlan = (ip: string, mac: string): LeaseAttrs => ({
  publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac }
})

/** flannel's lease JSON, as Go's json.Marshal writes it (Documentation/reservations.md). */
const flannelJson = (ip: string, mac: string): string =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`

/** Rejects if `p` takes longer than `ms`: every wait here is bounded. */
async function within<T> (ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms) }) // a bound, not a pause
  try {
    return await Promise.race([p, late])
  } finally { clearTimeout(timer) }
}

/** A port with nothing listening on 127.0.0.1. */
function deadPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => { typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port')) })
    })
  })
}

/** etcdctl prints lease IDs in hex; -w json gives them in decimal, too big for a JS number. */
function leaseOf (endpoint: string, key: string, extra: string[] = []): bigint {
  const out = etcdctl(endpoint, ['get', key, '-w', 'json'], extra)
  const m = /"lease":(\d+)/.exec(out)
  return m === null ? 0n : BigInt(m[1])
}

function grantedTtl (endpoint: string, lease: bigint): { granted: number, remaining: number } {
  const out = etcdctl(endpoint, ['lease', 'timetolive', lease.toString(16)])
  // "lease 694d8a5c2f4a7b0e granted with TTL(86400s), remaining(86399s)"
  const m = /granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/.exec(out)
  assert.ok(m !== null, `etcdctl lease timetolive said: ${out}`)
  return { granted: Number(m[1]), remaining: Number(m[2]) }
}

interface Watching {
  readonly batches: WatchBatch[]
  readonly errors: StoreError[]
  recovered: number
  stop (): Promise<void>
}

/** Runs a watch in the background, collecting what it says. */
function watchInBackground (store: Store, from: number): Watching {
  const ac = new AbortController()
  const w: Watching = {
    batches: [],
    errors: [],
    recovered: 0,
    stop: async () => { ac.abort(); await within(5000, done, 'stopping the watch') }
  }
  const done = (async () => {
    for await (const b of store.watchLeases(from, {
      signal: ac.signal,
      onError: (e) => { w.errors.push(e as StoreError) },
      onRecover: () => { w.recovered++ }
    })) w.batches.push(b)
  })()
  return w
}

const putSubnets = (w: Watching): Ip4Net[] =>
  w.batches.flatMap((b) => b.events).flatMap((e) => (e.type === 'put' ? [e.lease.subnet] : []))

/** Waits for the watch to have seen `n` puts; a timeout says what it did see. */
async function puts (w: Watching, n: number, what: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(() => putSubnets(w).length >= n, { what, timeoutMs, intervalMs: 50 })
  } catch (err) {
    const seen = w.batches.flatMap((b) => b.events).map((e) => (e.type === 'put' ? `put ${formatCidr(e.lease.subnet)}@${e.lease.revision}` : `delete ${formatCidr(e.subnet)}@${e.revision}`))
    throw new Error(`${(err as Error).message}; saw [${seen.join(', ')}], errors [${w.errors.map((e) => `${e.code}: ${e.message}`).join('; ')}], recovered ${w.recovered}`)
  }
}

describe('etcd store, flannel compatibility', { skip }, () => {
  let etcd: EtcdHandle
  let store: EtcdStore
  const ctl = (...args: string[]): string => etcdctl(etcd.endpoint, args)

  before(async () => {
    etcd = await startEtcd()
    store = new EtcdStore({ endpoints: [etcd.endpoint] })
  })
  after(async () => {
    await store?.close()
    await etcd?.stop()
  })

  const clean = (): void => { ctl('del', '--prefix', `${PREFIX}/`) }

  test('writes flannel\'s key and lease JSON byte for byte, on a 24 h etcd lease', async () => {
    clean()
    assert.equal(store.prefix, PREFIX, 'the default prefix is flannel\'s')
    const defaults = new EtcdStore()
    assert.deepEqual(defaults.endpoints, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379'], 'and so are the default endpoints')
    await defaults.close()
    await store.createLease(S1, vxlan('198.18.0.1', 'c6:d2:32:6f:8f:44'), SUBNET_TTL_SECONDS)
    const out = ctl('get', '--prefix', `${PREFIX}/subnets/`)
    assert.equal(out, `${PREFIX}/subnets/10.244.1.0-24\n${flannelJson('198.18.0.1', 'c6:d2:32:6f:8f:44')}\n`)
    const lease = leaseOf(etcd.endpoint, `${PREFIX}/subnets/10.244.1.0-24`)
    assert.notEqual(lease, 0n, 'the key is attached to an etcd lease')
    const ttl = grantedTtl(etcd.endpoint, lease)
    assert.equal(ttl.granted, 86400)
    assert.ok(ttl.remaining > 86400 - 30, `remaining ${ttl.remaining}s`)
  })

  test('keeps flannel\'s config key, and says what flannel says when it is missing', async () => {
    ctl('del', `${PREFIX}/config`)
    assert.equal(await store.getConfig(), undefined)
    assert.match(CONFIG_NOT_FOUND_HINT, /Did you create your config using etcdv3 API\?/)
    const conf = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
    ctl('put', `${PREFIX}/config`, conf)
    assert.equal(await store.getConfig(), conf)
  })

  test('reads leases an operator wrote with etcdctl, with and without --lease; the lease-less one is a reservation', async () => {
    clean()
    ctl('put', `${PREFIX}/subnets/10.244.2.0-24`, flannelJson('198.18.0.2', 'aa:bb:cc:dd:ee:02'))
    const granted = /lease ([0-9a-f]+) granted/.exec(ctl('lease', 'grant', '600'))
    assert.ok(granted !== null)
    ctl('put', `--lease=${granted[1]}`, `${PREFIX}/subnets/10.244.3.0-24`, flannelJson('198.18.0.3', 'aa:bb:cc:dd:ee:03'))
    // Go decodes keys case-insensitively; a hand-written value may use any case
    ctl('put', `${PREFIX}/subnets/10.244.4.0-24`, '{"publicip":"198.18.0.4","backendtype":"host-gw"}')
    // flannel's dual-stack key: both halves, the IPv6 one as subnet6
    ctl('put', `${PREFIX}/subnets/10.244.5.0-24&fc00:0:0:5::-64`, flannelJson('198.18.0.5', 'aa:bb:cc:dd:ee:05'))

    const list = await store.listLeases()
    assert.deepEqual(list.skipped, [])
    const by = new Map(list.leases.map((l) => [`${l.subnet.ip}/${l.subnet.prefixLen}`, l]))
    const get = (s: Ip4Net) => { const l = by.get(`${s.ip}/${s.prefixLen}`); assert.ok(l !== undefined); return l }
    const reserved = get(S2)
    assert.equal(reserved.expiration, null, 'no --lease: a reservation')
    assert.deepEqual(reserved.attrs, vxlan('198.18.0.2', 'aa:bb:cc:dd:ee:02'))
    const leased = get(S3)
    assert.ok(leased.expiration !== null && Math.abs(leased.expiration - (Date.now() + 600_000)) < 5000, 'expiration from the etcd lease')
    assert.deepEqual(leased.attrs, vxlan('198.18.0.3', 'aa:bb:cc:dd:ee:03'))
    const hostgw = get(parseCidr('10.244.4.0/24'))
    assert.equal(hostgw.attrs.backendType, 'host-gw')
    assert.equal(hostgw.attrs.publicIP, parseIp4('198.18.0.4'))
    assert.ok(by.has(`${parseCidr('10.244.5.0/24').ip}/24`))
    assert.equal(formatCidr6(get(parseCidr('10.244.5.0/24')).subnet6!), 'fc00:0:0:5::/64')
    assert.ok(list.leases.every((l) => l.revision > 0 && l.revision <= list.revision))
  })

  test('dual-stack and IPv6-only leases: flanneld\'s keys and value bytes (PublicIPv6, BackendV6Data), both ways', async () => {
    clean()
    const dual = { ...vxlan('198.18.0.1', 'c6:d2:32:6f:8f:44'), publicIPv6: '2001:2::1', backendV6Data: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:66' } }
    await store.createLease(S1, dual, SUBNET_TTL_SECONDS, parseCidr6('fc00:0:0:1::/64'))
    await store.createLease({ ip: 0, prefixLen: 0 }, { publicIP: 0, publicIPv6: '2001:2::2', backendType: 'host-gw' }, SUBNET_TTL_SECONDS, parseCidr6('fc00:0:0:2::/64'))
    assert.equal(ctl('get', '--prefix', `${PREFIX}/subnets/`), [
      `${PREFIX}/subnets/0.0.0.0-0&fc00:0:0:2::-64`,
      '{"PublicIP":"0.0.0.0","PublicIPv6":"2001:2::2","BackendType":"host-gw"}',
      `${PREFIX}/subnets/10.244.1.0-24&fc00:0:0:1::-64`,
      '{"PublicIP":"198.18.0.1","PublicIPv6":"2001:2::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:66"}}',
      ''
    ].join('\n'))
    // what flanneld writes for a dual-stack vxlan node, read back by weft
    ctl('put', `${PREFIX}/subnets/10.244.3.0-24&fc00:0:0:3::-64`, '{"PublicIP":"198.18.0.3","PublicIPv6":"2001:2::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:03"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ff:03"}}')
    const l = (await store.listLeases()).leases.find((x) => x.subnet.ip === S3.ip)
    assert.ok(l !== undefined)
    assert.equal(formatCidr6(l.subnet6!), 'fc00:0:0:3::/64')
    assert.equal(l.attrs.publicIPv6, '2001:2::3')
    assert.deepEqual(l.attrs.backendV6Data, { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ff:03' })
    await store.deleteLease(S3, parseCidr6('fc00:0:0:3::/64'))
    assert.equal(ctl('get', `${PREFIX}/subnets/10.244.3.0-24&fc00:0:0:3::-64`), '')
  })

  test('renewing a reservation keeps it one (no etcd lease), unlike flannel bug #1329', async () => {
    clean()
    ctl('put', `${PREFIX}/subnets/10.244.2.0-24`, flannelJson('198.18.0.2', 'aa:bb:cc:dd:ee:02'))
    const [l] = (await store.listLeases()).leases
    assert.equal(l.expiration, null)
    const r = await store.renewLease(l.subnet, l.attrs, 0)
    assert.equal(r.expiration, null)
    assert.equal(leaseOf(etcd.endpoint, `${PREFIX}/subnets/10.244.2.0-24`), 0n, 'still no etcd lease')
    assert.equal(ctl('get', '--print-value-only', `${PREFIX}/subnets/10.244.2.0-24`), `${flannelJson('198.18.0.2', 'aa:bb:cc:dd:ee:02')}\n`)
  })

  test('skips a value that is not JSON and a key that does not parse, naming them, and keeps the rest', async () => {
    clean()
    const start = await store.listLeases()
    const w = watchInBackground(store, start.revision)
    try {
      ctl('put', `${PREFIX}/subnets/10.244.1.0-24`, flannelJson('198.18.0.1', 'aa:bb:cc:dd:ee:01'))
      ctl('put', `${PREFIX}/subnets/10.244.9.0-24`, 'not json at all')
      ctl('put', `${PREFIX}/subnets/garbage`, flannelJson('198.18.0.9', 'aa:bb:cc:dd:ee:09'))
      const list = await store.listLeases()
      assert.deepEqual(list.leases.map((l) => l.subnet), [S1])
      assert.deepEqual(list.skipped.map((s) => s.key).sort(), ['10.244.9.0-24', 'garbage'])
      assert.match(list.skipped.find((s) => s.key === '10.244.9.0-24')?.reason ?? '', /not JSON/)
      await waitFor(() => w.batches.flatMap((b) => b.skipped).length >= 2, { what: 'the watch to report both', timeoutMs: 5000 })
      assert.deepEqual(putSubnets(w), [S1])
      assert.deepEqual(w.batches.flatMap((b) => b.skipped).map((s) => s.key).sort(), ['10.244.9.0-24', 'garbage'])
    } finally { await w.stop() }
  })

  test('an unreachable etcd is EUNAVAILABLE, quickly, naming the endpoint', async () => {
    const port = await deadPort()
    const dead = new EtcdStore({ endpoints: [`http://127.0.0.1:${port}`], dialTimeoutMs: 1000 })
    try {
      const t0 = Date.now()
      await assert.rejects(within(5000, dead.listLeases(), 'listLeases'), (e: unknown) =>
        e instanceof StoreError && e.code === 'EUNAVAILABLE' && e.message.startsWith(`etcd at http://127.0.0.1:${port} is unreachable: `))
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`)
      await assert.rejects(within(5000, dead.getConfig(), 'getConfig'), (e: unknown) => e instanceof StoreError && e.code === 'EUNAVAILABLE')
    } finally { await dead.close() }
  })

  test('a frozen etcd (SIGSTOP) is EUNAVAILABLE within the timeout, not a hang', async () => {
    const frozen = new EtcdStore({ endpoints: [etcd.endpoint], dialTimeoutMs: 1000 })
    try {
      await frozen.listLeases() // connected before the freeze
      etcd.pause()
      const t0 = Date.now()
      try {
        await assert.rejects(within(8000, frozen.listLeases(), 'listLeases'), (e: unknown) =>
          e instanceof StoreError && e.code === 'EUNAVAILABLE' && e.message.includes(etcd.endpoint))
      } finally { etcd.resume() }
      assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms`)
      await within(10_000, frozen.listLeases(), 'listLeases after resume')
    } finally { await frozen.close() }
  })

  test('a watch notices a frozen etcd (keepalive), reports it, and recovers when it thaws', { timeout: 60_000 }, async () => {
    clean()
    const start = await store.listLeases()
    const w = watchInBackground(store, start.revision)
    const writer = new EtcdStore({ endpoints: [etcd.endpoint] })
    try {
      // an event proves the watch is established before the freeze
      await writer.createLease(S2, vxlan('198.18.0.2', 'aa:bb:cc:dd:ee:02'), 600)
      await puts(w, 1, 'the event before the freeze', 5000)
      etcd.pause()
      try {
        // HTTP/2 keepalive: a ping every 10 s, 5 s to answer
        await waitFor(() => w.errors.length > 0, { what: 'the watch to report the frozen etcd', timeoutMs: 25_000, intervalMs: 200 })
      } finally { etcd.resume() }
      assert.equal(w.errors[0].code, 'EUNAVAILABLE')
      await writer.createLease(S1, vxlan('198.18.0.1', 'aa:bb:cc:dd:ee:01'), 600)
      await puts(w, 2, 'the event after the thaw', 15_000)
      assert.deepEqual(putSubnets(w), [S2, S1])
      assert.ok(w.recovered >= 1, 'onRecover was called')
    } finally {
      await w.stop()
      await writer.close()
    }
  })

  test('a watch survives etcd stopping and restarting: later events arrive, none lost or repeated', { timeout: 60_000 }, async () => {
    clean()
    const start = await store.listLeases()
    const w = watchInBackground(store, start.revision)
    const writer = new EtcdStore({ endpoints: [etcd.endpoint] })
    try {
      await writer.createLease(S1, vxlan('198.18.0.1', 'aa:bb:cc:dd:ee:01'), 600)
      await puts(w, 1, 'the first event', 5000)
      await etcd.restart()
      // written as soon as etcd is back, most likely while the watch is still backing off
      await within(10_000, writer.createLease(S2, vxlan('198.18.0.2', 'aa:bb:cc:dd:ee:02'), 600), 'create after restart')
      await puts(w, 2, 'the event written during the reconnect', 15_000)
      await writer.deleteLease(S1)
      await writer.createLease(S3, vxlan('198.18.0.3', 'aa:bb:cc:dd:ee:03'), 600)
      await puts(w, 3, 'events after the reconnect', 10_000)
      const events = w.batches.flatMap((b) => b.events)
      const said = `events ${JSON.stringify(events)}; errors ${w.errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`
      assert.deepEqual(events.map((e) => (e.type === 'put' ? `put ${e.lease.subnet.ip}` : `delete ${e.subnet.ip}`)),
        [`put ${S1.ip}`, `put ${S2.ip}`, `delete ${S1.ip}`, `put ${S3.ip}`], said)
      const revs = events.map((e) => (e.type === 'put' ? e.lease.revision : e.revision))
      assert.deepEqual(revs, [...revs].sort((a, b) => a - b))
      assert.equal(new Set(revs).size, revs.length, 'no event twice')
      assert.ok(w.errors.length >= 1, 'onError was called')
      assert.ok(w.errors.every((e) => e instanceof StoreError && e.code === 'EUNAVAILABLE'), w.errors.map((e) => `${e.code}: ${e.message}`).join('; '))
      assert.ok(w.recovered >= 1, 'onRecover was called')
    } finally {
      await w.stop()
      await writer.close()
    }
  })
})

describe('etcd store over TLS with client certificates', { skip: skip ?? toolSkipReason('openssl') }, () => {
  let tls: TlsFiles
  let etcd: EtcdHandle | undefined

  before(async () => {
    tls = makeTlsFiles()
    etcd = await startEtcd({
      tls: {
        caFile: tls.caFile,
        certFile: tls.serverCert,
        keyFile: tls.serverKey,
        clientCertAuth: true,
        clientCertFile: tls.clientCert,
        clientKeyFile: tls.clientKey
      }
    })
  })
  after(async () => {
    await etcd?.stop()
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true })
  })

  const open = (o: Partial<EtcdStoreOptions>): EtcdStore => new EtcdStore({ endpoints: [etcd?.endpoint ?? ''], dialTimeoutMs: 2000, ...o })

  test('connects with keyFile, certFile and caFile', async () => {
    assert.ok(etcd?.endpoint.startsWith('https://127.0.0.1:'))
    const s = open({ keyFile: tls.clientKey, certFile: tls.clientCert, caFile: tls.caFile })
    try {
      await s.createLease(S1, vxlan('198.18.0.1', 'aa:bb:cc:dd:ee:01'), 600)
      const list = await s.listLeases()
      assert.deepEqual(list.leases.map((l) => l.subnet), [S1])
      const out = etcdctl(etcd?.endpoint ?? '', ['get', '--print-value-only', `${PREFIX}/subnets/10.244.1.0-24`],
        ['--cacert', tls.caFile, '--cert', tls.clientCert, '--key', tls.clientKey])
      assert.equal(out, `${flannelJson('198.18.0.1', 'aa:bb:cc:dd:ee:01')}\n`)
    } finally { await s.close() }
  })

  /** The store's first call fails with ETLS (not EUNAVAILABLE: waiting for etcd would not help) and `hint`. */
  async function refusedTls (o: Partial<EtcdStoreOptions>, hint: RegExp): Promise<void> {
    const s = open(o)
    try {
      await assert.rejects(within(8000, s.listLeases(), 'listLeases'), (e: unknown) => {
        assert.ok(e instanceof StoreError, String(e))
        assert.equal(e.code, 'ETLS', e.message)
        assert.match(e.message, new RegExp(`^etcd at ${etcd?.endpoint ?? ''}`))
        assert.match(e.message, hint)
        return true
      })
    } finally { await s.close() }
  }

  test('fails clearly, and quickly, without a client certificate: ETLS', async () => {
    await refusedTls({ caFile: tls.caFile }, /client certificate: give --etcd-certfile and --etcd-keyfile/)
  })

  test('a client certificate from a CA etcd does not trust is ETLS', async () => {
    const other = makeTlsFiles()
    try {
      await refusedTls({ caFile: tls.caFile, certFile: other.clientCert, keyFile: other.clientKey }, /etcd rejected our client certificate/)
    } finally { rmSync(other.dir, { recursive: true, force: true }) }
  })

  test('a server certificate we cannot verify (another CA, or no --etcd-cafile) is ETLS', async () => {
    const other = makeTlsFiles()
    try {
      await refusedTls({ caFile: other.caFile, certFile: tls.clientCert, keyFile: tls.clientKey }, /cannot verify etcd's certificate: check --etcd-cafile/)
      await refusedTls({ certFile: tls.clientCert, keyFile: tls.clientKey }, /cannot verify etcd's certificate: check --etcd-cafile/)
    } finally { rmSync(other.dir, { recursive: true, force: true }) }
  })

  test('a watch refused at the TLS handshake reports ETLS, not an unreachable etcd', async () => {
    const s = open({ caFile: tls.caFile })
    const ac = new AbortController()
    const errors: StoreError[] = []
    try {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the loop only drains the watch
      const watching = (async () => { for await (const _batch of s.watchLeases(0, { signal: ac.signal, onError: (e) => { errors.push(e as StoreError) } })) { /* nothing arrives */ } })()
      await waitFor(() => errors.length >= 2, { what: 'two watch errors', timeoutMs: 15_000 })
      ac.abort()
      await watching
      assert.deepEqual([...new Set(errors.map((e) => e.code))], ['ETLS'], errors.map((e) => e.message).join('; '))
    } finally {
      ac.abort()
      await s.close()
    }
  })

  test('refuses half a TLS setup instead of silently going plain', () => {
    assert.throws(() => open({ certFile: tls.clientCert }), (e: unknown) => e instanceof StoreError && /both a key file and a certificate file/.test(e.message))
  })
})

describe('etcd store with username and password', { skip }, () => {
  let etcd: EtcdHandle | undefined
  before(async () => {
    etcd = await startEtcd()
    const ep = etcd.endpoint
    etcdctl(ep, ['user', 'add', 'root:s3cret', '--interactive=false'])
    etcdctl(ep, ['auth', 'enable'])
  })
  after(async () => { await etcd?.stop() })

  test('works with the right password, watches included', async () => {
    const s = new EtcdStore({ endpoints: [etcd?.endpoint ?? ''], username: 'root', password: 's3cret' })
    try {
      const start = await s.listLeases()
      const w = watchInBackground(s, start.revision)
      try {
        await s.createLease(S1, vxlan('198.18.0.1', 'aa:bb:cc:dd:ee:01'), 600)
        await puts(w, 1, 'the watch event', 5000)
        assert.deepEqual(w.errors, [])
      } finally { await w.stop() }
    } finally { await s.close() }
  })

  test('a watch signs in again after etcd restarts (its auth tokens live in memory)', { timeout: 60_000 }, async () => {
    const e = etcd as EtcdHandle
    const opts = { endpoints: [e.endpoint], username: 'root', password: 's3cret', prefix: '/weft-auth-restart' }
    const s = new EtcdStore(opts)
    const writer = new EtcdStore(opts)
    try {
      const start = await s.listLeases()
      const w = watchInBackground(s, start.revision)
      try {
        await writer.createLease(S1, vxlan('198.18.0.1', 'aa:bb:cc:dd:ee:01'), 600)
        await puts(w, 1, 'the event before the restart', 5000)
        await e.restart()
        await within(10_000, writer.createLease(S2, vxlan('198.18.0.2', 'aa:bb:cc:dd:ee:02'), 600), 'create after restart')
        await puts(w, 2, 'the event after the restart', 15_000)
        assert.deepEqual(putSubnets(w), [S1, S2])
        assert.ok(w.recovered >= 1)
      } finally { await w.stop() }
    } finally {
      await s.close()
      await writer.close()
    }
  })

  test('a wrong password is a clear error', async () => {
    const s = new EtcdStore({ endpoints: [etcd?.endpoint ?? ''], username: 'root', password: 'wrong' })
    try {
      await assert.rejects(within(8000, s.listLeases(), 'listLeases'), (e: unknown) =>
        e instanceof StoreError && e.code === 'ESTORE' && /rejected the username or password/.test(e.message))
    } finally { await s.close() }
  })

  test('no credentials at all is a clear error', async () => {
    const s = new EtcdStore({ endpoints: [etcd?.endpoint ?? ''] })
    try {
      await assert.rejects(within(8000, s.listLeases(), 'listLeases'), (e: unknown) =>
        e instanceof StoreError && e.code === 'ESTORE' && /etcd at .* requires authentication: .*--etcd-username/.test(e.message))
    } finally { await s.close() }
  })
})
