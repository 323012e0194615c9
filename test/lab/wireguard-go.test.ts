// Two nodes running no weft, only Debian's wireguard-go set up as flanneld's
// wireguard backend sets up flannel-wg (lab/wireguard.ts), each with a pod:
// the pods and the devices' addresses reach each other, iperf3 pushes data
// across, and a capture of the underlay holds nothing but WireGuard
// messages on UDP 51820 (a handshake, then only type 4, the pods' bytes
// nowhere in clear). This proves the reference weft's userspace WireGuard is
// checked and benchmarked against. Skipped, with the reason, without root
// or the tools.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { withTopology, type Host } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { iperf, ping, pingMatrix } from '../../lab/traffic'
import {
  generatePrivateKey,
  keyFromFile,
  parseKey,
  parseWgDump,
  publicKeyOf,
  wireguardGoNode,
  wireguardLeaseValue,
  writeKeyFile,
} from '../../lab/wireguard'

const skip = netnsSkipReason() ?? toolSkipReason('wireguard-go', 'wg', 'nsenter', 'iperf3', 'tcpdump', 'ss')

test('lease value is flannel\'s compact JSON, byte for byte', () => {
  assert.equal(
    wireguardLeaseValue({ publicIp: '198.18.0.2', publicKey: 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=', port: 51820 }),
    '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=","Port":51820}}'
  )
})

test('keys: X25519 public keys as wg pubkey derives them; key files as flanneld writes and reads them', (t) => {
  // RFC 7748 section 6.1, Alice
  const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64')
  assert.equal(Buffer.from(publicKeyOf(alice), 'base64').toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
  for (let i = 0; i < 20; i++) {
    const k = parseKey(generatePrivateKey())
    assert.equal(k.length, 32)
    assert.equal(k[0]! & 7, 0, 'clamped')
    assert.equal(k[31]! & 0xc0, 0x40, 'clamped')
  }
  if (toolSkipReason('wg') === undefined) {
    const k = generatePrivateKey()
    assert.equal(publicKeyOf(k), execFileSync('wg', ['pubkey'], { input: k }).toString().trim(), 'as wg pubkey')
  }
  assert.throws(() => parseKey('AAAA'), /not a base64 WireGuard key/)
  assert.throws(() => parseKey(Buffer.alloc(31).toString('base64')), /not a base64 WireGuard key/)

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-wgkey-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'flannel', 'wgkey')
  const k = keyFromFile(file) // missing: a new key, written there
  const st = fs.statSync(file)
  assert.equal(st.mode & 0o777, 0o400)
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o755)
  assert.equal(fs.readFileSync(file, 'utf8'), k, 'base64, no newline')
  assert.equal(keyFromFile(file), k, 'read back')
  const other = path.join(dir, 'nl')
  writeKeyFile(other, k)
  fs.chmodSync(other, 0o600)
  fs.appendFileSync(other, '\n')
  assert.equal(keyFromFile(other), k, 'a trailing newline is fine (Go\'s base64 decoder skips it)')
})

test('wg show dump is parsed', () => {
  const d = parseWgDump([
    'aB77ek88ywD0tYhAwTr56RwbzWRkZR/f5Zg0zLSogFU=\t6R0ozm9eCmV3Ofn5PymmTCxQSDAuJYq/vcfsP+2+3mI=\t51820\toff',
    'f+rzRle+pjqY8I9EFtB3CXsk2P+Fzve5Eqixq6zVgwU=\t(none)\t198.18.0.2:51820\t10.244.6.0/24,10.244.7.0/24\t1700000000\t1234\t5678\t25',
    'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\t95bJ1CH1mCKMhco+k53T4K8HdZEl+GXfMBULrzhugOQ=\t(none)\t(none)\t0\t0\t0\toff',
    '',
  ].join('\n'))
  assert.equal(d.listenPort, 51820)
  assert.equal(d.fwmark, 0)
  assert.deepEqual(d.peers[0], {
    publicKey: 'f+rzRle+pjqY8I9EFtB3CXsk2P+Fzve5Eqixq6zVgwU=',
    presharedKey: undefined,
    endpoint: '198.18.0.2:51820',
    allowedIps: ['10.244.6.0/24', '10.244.7.0/24'],
    latestHandshake: 1700000000,
    rxBytes: 1234,
    txBytes: 5678,
    persistentKeepalive: 25,
  })
  assert.equal(d.peers[1]!.presharedKey, '95bJ1CH1mCKMhco+k53T4K8HdZEl+GXfMBULrzhugOQ=')
  assert.deepEqual(d.peers[1]!.allowedIps, [])
  assert.equal(d.peers[1]!.endpoint, undefined)
})

/** One frame of a pcap file: its UDP header and the first bytes of its payload, or why it is not UDP over IPv4. */
interface Frame { src: string, dst: string, sport: number, dport: number, udpLen: number, payload: Buffer }

function frames (file: string): Array<Frame | string> {
  const f = fs.readFileSync(file)
  assert.equal(f.readUInt32LE(0), 0xa1b2c3d4, 'pcap, microsecond, little-endian')
  assert.equal(f.readUInt32LE(20), 1, 'Ethernet')
  const out: Array<Frame | string> = []
  for (let off = 24; off + 16 <= f.length;) {
    const caplen = f.readUInt32LE(off + 8)
    const frame = f.subarray(off + 16, off + 16 + caplen)
    off += 16 + caplen
    const type = frame.readUInt16BE(12)
    if (type !== 0x0800) { out.push(`ethertype 0x${type.toString(16)}`); continue }
    const ip = (at: number): string => [...frame.subarray(at, at + 4)].join('.')
    if (frame[23] !== 17) { out.push(`IP protocol ${frame[23]}, ${ip(26)} > ${ip(30)}`); continue }
    const u = 14 + (frame[14]! & 15) * 4
    out.push({ src: ip(26), dst: ip(30), sport: frame.readUInt16BE(u), dport: frame.readUInt16BE(u + 2), udpLen: frame.readUInt16BE(u + 4) - 8, payload: frame.subarray(u + 8) })
  }
  return out
}

test('two wireguard-go nodes set up as flanneld: pods and devices ping, iperf3 across, the underlay carries only WireGuard', { skip, timeout: 120_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-wggo-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  await withTopology(t, { hosts: 2, label: 'wggo', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts as [Host, Host]
    const psk = generatePrivateKey()
    const keyFile = path.join(dir, 'flannel', 'wgkey')
    const a = await wireguardGoNode(topo, h1, { subnet: '10.244.5.0/24', keyFile, psk })
    const b = await wireguardGoNode(topo, h2, { subnet: '10.244.6.7/24', psk, persistentKeepalive: 25 })
    assert.equal(a.privateKey, fs.readFileSync(keyFile, 'utf8'), 'the key flanneld would keep in WIREGUARD_KEY_FILE')
    assert.equal(b.subnet, '10.244.6.0/24')
    assert.equal(a.mtu, 1420)
    assert.equal(wireguardLeaseValue(a), `{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${a.publicKey}","Port":51820}}`)

    const dev = JSON.parse((await topo.exec(h1, ['ip', '-d', '-j', 'link', 'show', 'flannel-wg'])).stdout)[0]
    assert.equal(dev.mtu, 1420)
    assert.equal(dev.linkinfo?.info_kind, 'tun', 'wireguard-go\'s TUN')
    assert.match((await topo.exec(h1, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'flannel-wg'])).stdout, /inet 10\.244\.5\.0\/32 /)
    assert.match((await topo.exec(h1, ['ip', 'route', 'show', 'dev', 'flannel-wg'])).stdout, /^10\.244\.0\.0\/16 scope link/m)
    // each node its own /run/wireguard: two devices of one name, two sockets, two keys
    const [da, db] = [await a.dump(), await b.dump()]
    assert.equal(da.publicKey, a.publicKey)
    assert.equal(db.publicKey, b.publicKey)
    assert.notEqual(a.publicKey, b.publicKey)
    assert.equal(da.listenPort, 51820)
    assert.deepEqual(da.peers, [])

    const pcap = path.join(dir, 'underlay.pcap')
    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-s', '200', '-c', '30000', '-w', pcap, 'not arp and not igmp'])
    await cap.waitForLine(/listening on/, 5000, 'stderr')

    await a.setPeer(b.peer)
    await b.setPeer(a.peer)
    await a.setPeer(b.peer) // flannel re-adds peers on every lease event: harmless
    const show = (await a.wg(['show', 'flannel-wg'])).stdout
    assert.match(show, new RegExp(`peer: ${b.publicKey.replace(/[+/]/g, '\\$&')}\\n  preshared key: \\(hidden\\)\\n  endpoint: 198\\.18\\.0\\.2:51820\\n  allowed ips: 10\\.244\\.6\\.0/24`))
    assert.match((await b.wg(['show', 'flannel-wg', 'persistent-keepalive'])).stdout, /\t25$/m)

    const pods = [
      ...await addPods(topo, h1, { subnet: a.subnet, count: 1, mtu: a.mtu }),
      ...await addPods(topo, h2, { subnet: b.subnet, count: 1, mtu: b.mtu }),
    ]
    const m = await pingMatrix(topo, pods)
    assert.deepEqual(m.failed, [])
    const dev2dev = await ping(topo, h1, b.deviceIp, { count: 2, intervalS: 0.2, waitS: 2 })
    assert.equal(dev2dev.received, 2, `device to device: ${dev2dev.output}`)
    // 1392 + 28 = 1420: a full-MTU pod packet crosses without fragmentation; its bytes are a pattern we look for below
    const pattern = '77656674cafe'
    const big = await topo.exec(pods[0]!.ns, ['ping', '-n', '-c', '2', '-W', '2', '-M', 'do', '-s', '1392', '-p', pattern, pods[1]!.ip], { timeoutMs: 8000 })
    assert.match(big.stdout, /2 received/)

    const r = await iperf(topo, pods[1]!, pods[0]!, { serverIp: pods[1]!.ip, seconds: 2 })
    t.diagnostic(`wireguard-go pod-to-pod iperf3: ${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} retransmits`)
    assert.ok(r.gbps > 0, `throughput ${r.gbps}`)

    await cap.stop()
    const all = frames(pcap)
    assert.ok(all.length > 100, `captured ${all.length} frames`)
    const notUdp = all.filter((f): f is string => typeof f === 'string')
    assert.deepEqual(notUdp, [], 'nothing but UDP over IPv4 on the underlay (ARP, and the bridge\'s IGMP reports, aside)')
    const udp = all as Frame[]
    const types = new Map<number, number>()
    let lastHandshake = -1
    for (const [i, f] of udp.entries()) {
      assert.deepEqual([f.sport, f.dport], [51820, 51820], `frame ${i}: ${f.src}:${f.sport} > ${f.dst}:${f.dport}`)
      assert.ok(['198.18.0.1', '198.18.0.2'].includes(f.src) && ['198.18.0.1', '198.18.0.2'].includes(f.dst) && f.src !== f.dst, `frame ${i}: ${f.src} > ${f.dst}`)
      const type = f.payload.readUInt32LE(0) // the type byte, then three zero bytes
      types.set(type, (types.get(type) ?? 0) + 1)
      if (type === 1) assert.equal(f.udpLen, 148, 'handshake initiation')
      else if (type === 2) assert.equal(f.udpLen, 92, 'handshake response')
      // padded to a multiple of 16, but never past the device MTU (1420 = 88 x 16 + 12)
      else if (type === 4) assert.ok(f.udpLen >= 32 && ((f.udpLen - 32) % 16 === 0 || f.udpLen - 32 === a.mtu), `transport data of ${f.udpLen} bytes: 32 + padded to 16 or to the MTU`)
      else assert.fail(`frame ${i}: WireGuard message type ${type}`)
      if (type === 1 || type === 2) lastHandshake = i
    }
    assert.equal(udp[0]!.payload.readUInt32LE(0), 1, 'the first message is a handshake initiation')
    assert.ok((types.get(2) ?? 0) >= 1, 'a handshake response')
    assert.ok(lastHandshake < 10, `one handshake, then only transport data (last handshake message at frame ${lastHandshake})`)
    assert.ok((types.get(4) ?? 0) > 100, `transport data: ${types.get(4)}`)
    const clear = Buffer.from(pattern.repeat(4), 'hex')
    assert.ok(!fs.readFileSync(pcap).includes(clear), 'the pods\' bytes are nowhere in clear on the underlay')
    t.diagnostic(`underlay: ${udp.length} frames, message types ${JSON.stringify(Object.fromEntries(types))}`)

    const peer = (await a.dump()).peers
    assert.equal(peer.length, 1)
    assert.equal(peer[0]!.publicKey, b.publicKey)
    assert.equal(peer[0]!.presharedKey, psk)
    assert.deepEqual(peer[0]!.allowedIps, ['10.244.6.0/24'])
    assert.equal(peer[0]!.endpoint, '198.18.0.2:51820')
    assert.ok(peer[0]!.latestHandshake > Date.now() / 1000 - 60, 'a recent handshake')
    assert.ok(peer[0]!.txBytes > 1e6 && peer[0]!.rxBytes > 0, `transfer rx ${peer[0]!.rxBytes} tx ${peer[0]!.txBytes}`)

    // removePeer takes the peer away: the other node is unreachable again
    await a.removePeer(b.peer)
    assert.deepEqual((await a.dump()).peers, [])
    const gone = await ping(topo, pods[0]!, pods[1]!.ip, { count: 1, waitS: 1 })
    assert.equal(gone.received, 0)

    await a.stop()
    await a.stop()
    assert.equal(a.child.running, false)
    assert.equal((await topo.exec(h1, ['ip', 'link', 'show', 'flannel-wg'], { allowFail: true })).code, 1, 'the device went with wireguard-go')
  })
})

test('a setup that fails half way leaves no wireguard-go behind', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'wggo-fail', timeoutMs: 50_000 }, async (topo) => {
    const [h1] = topo.hosts as [Host]
    // wireguard-go starts and makes its TUN; the MTU the kernel refuses fails the next step
    await assert.rejects(wireguardGoNode(topo, h1, { subnet: '10.244.5.0/24', mtu: 50 }), /mtu 50/)
    // asked from outside: a command run inside would list itself
    assert.equal(execFileSync('ip', ['netns', 'pids', h1.ns]).toString().trim(), '', 'nothing runs in the namespace')
    assert.equal((await topo.exec(h1, ['ip', 'link', 'show', 'flannel-wg'], { allowFail: true })).code, 1, 'no device')
  })
})
