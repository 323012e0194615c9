// The weft side of the interop test (interop.test.ts), run in a namespace of
// its own: `node interop-peer.js '<config json>'`. It speaks WireGuard over a
// plain UDP socket with src/wireguard (handshakes, timers, cookies) and
// Node's ChaCha20-Poly1305 for the transport messages (Device's JavaScript
// reference path), as a pod at `localIp` behind it would: it answers ICMP
// echo requests for localIp and sends its own to `remoteIp` when told.
//
// stdin: one JSON command a line
//   {"cmd":"ping","seq":n}         an echo request to remoteIp (held until a session exists)
//   {"cmd":"bad-mac1"}             a valid initiation with its mac1 broken
//   {"cmd":"flood","n":n}          n initiations from a stranger's key (valid mac1: costly for the responder)
//   {"cmd":"flood-ahead","n":n}    the same, sent just before our next initiation
//   {"cmd":"stats"}                prints the drop counts
// stdout: one JSON event a line ("listening", "handshake", "session",
// "echo-request", "echo-reply", "transport", "sent", "stats", "error").
import dgram from 'node:dgram'
import readline from 'node:readline'
import { Device } from '../../src/wireguard/device'
import { generateKeyPair, parseKey } from '../../src/wireguard/keys'
import { MSG_TRANSPORT, messageType, readU32 } from '../../src/wireguard/messages'
import type { Outgoing } from '../../src/wireguard/peer'
import { WG_DROP_NAMES, WgDrop } from '../../src/wireguard/reasons'
import { ip4ToString, parseIp4 } from '../../src/packet/ip'
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, icmpEchoRequestToReply, readIcmpEchoSeq, writeIcmpEcho } from '../../src/packet/icmp'
import { IPPROTO_ICMP, readIpv4Dst, readIpv4Protocol, readIpv4Src, readIpv4TotalLength, swapIpv4Addresses, writeIpv4Header } from '../../src/packet/ipv4'

interface Config {
  privateKey: string
  peerPublicKey: string
  psk?: string
  listenPort: number
  /** 'ip:port', or absent: learnt from the peer's initiation */
  peerEndpoint?: string
  localIp: string
  remoteIp: string
  /** tell the device it is under load (answer handshakes with cookie replies) */
  underLoad?: boolean
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config
const say = (event: string, o: Record<string, unknown> = {}): void => {
  process.stdout.write(JSON.stringify({ event, ...o }) + '\n')
}

const sock = dgram.createSocket('udp4')
const drops = new Array<number>(WG_DROP_NAMES.length).fill(0)
const held: Buffer[] = []

const dev = new Device({
  privateKey: parseKey(cfg.privateKey),
  hooks: {
    sessionReady: () => {
      say('session', { initiator: peer.current?.isInitiator ?? null })
      while (held.length > 0) sendPacket(held.shift()!)
    },
  },
})
const [peerIp, peerPort] = cfg.peerEndpoint?.split(':') ?? []
const peer = dev.addPeer({
  publicKey: parseKey(cfg.peerPublicKey),
  presharedKey: cfg.psk ? parseKey(cfg.psk) : null,
  endpoint: peerIp ? { addr: parseIp4(peerIp), port: Number(peerPort) } : null,
})

/** stranger initiations to send right before our next initiation (flood-ahead) */
let floodAhead = 0

function transmit (out: readonly Outgoing[]): void {
  for (const o of out) {
    if (o.kind === 'initiation' && floodAhead > 0) {
      // the flood, then ours right behind it (one socket keeps the order)
      const flood = floodAhead
      floodAhead = 0
      strangerInitiations(flood)
      sendOne(o, flood)
    } else {
      sendOne(o, 0)
    }
  }
}

function sendOne (o: Outgoing, flood: number): void {
  sock.send(o.bytes, o.port, ip4ToString(o.addr))
  const mac2 = o.kind === 'initiation' || o.kind === 'response' ? o.bytes.subarray(o.bytes.length - 16).some((b) => b !== 0) : undefined
  say('sent', { kind: o.kind, bytes: o.bytes.length, to: `${ip4ToString(o.addr)}:${o.port}`, mac2, flood, sender: readU32(o.bytes, 4) })
}

/** n copies of an initiation from a throwaway device with the peer's real key (bad-mac1) or a stranger's (flood); its sender index */
function throwawayInitiations (n: number, realKey: boolean, breakMac1: boolean): number {
  const d = new Device({ privateKey: realKey ? parseKey(cfg.privateKey) : generateKeyPair().privateKey })
  const p = d.addPeer({ publicKey: parseKey(cfg.peerPublicKey), endpoint: { addr: peer.endpointAddr, port: peer.endpointPort } })
  p.send(Date.now())
  const init = d.takeOutgoing()[0]!.bytes
  d.close()
  if (breakMac1) init[116]! ^= 0x01
  for (let i = 0; i < n; i++) sock.send(init, peer.endpointPort, ip4ToString(peer.endpointAddr))
  return readU32(init, 4)
}

function strangerInitiations (n: number): number {
  return throwawayInitiations(n, false, false)
}

/** Encrypts an IP packet to the peer, or holds it until the session is up. */
function sendPacket (packet: Buffer): void {
  const msg = dev.sendTransport(peer, packet, Date.now())
  if (msg === null) held.push(packet)
  else sock.send(msg, peer.endpointPort, ip4ToString(peer.endpointAddr))
  transmit(dev.takeOutgoing())
}

function echoRequest (seq: number): Buffer {
  const p = Buffer.alloc(20 + 8 + 32)
  writeIpv4Header(p, 0, 0, p.length, seq, 0, 64, IPPROTO_ICMP, parseIp4(cfg.localIp), parseIp4(cfg.remoteIp))
  p.fill(0x61, 28)
  writeIcmpEcho(p, 20, ICMP_ECHO_REQUEST, 0x7765, seq, p.length - 20)
  return p
}

sock.on('message', (msg, rinfo) => {
  const now = Date.now()
  const addr = parseIp4(rinfo.address)
  const type = messageType(msg)
  if (type === MSG_TRANSPORT) {
    const r = dev.receiveTransport(msg, addr, rinfo.port, now)
    drops[r.reason]!++
    if (r.payload === null) {
      say('transport', { reason: WG_DROP_NAMES[r.reason] })
    } else if (r.payload.length === 0) {
      say('transport', { reason: 'ok', keepalive: true })
    } else {
      const p = r.payload.subarray(0, readIpv4TotalLength(r.payload, 0))
      if (readIpv4Protocol(p, 0) === IPPROTO_ICMP && p[20] === ICMP_ECHO_REPLY) {
        say('echo-reply', { seq: readIcmpEchoSeq(p, 20), from: ip4ToString(readIpv4Src(p, 0)) })
      } else if (readIpv4Protocol(p, 0) === IPPROTO_ICMP && p[20] === ICMP_ECHO_REQUEST && ip4ToString(readIpv4Dst(p, 0)) === cfg.localIp) {
        say('echo-request', { seq: readIcmpEchoSeq(p, 20), from: ip4ToString(readIpv4Src(p, 0)) })
        const reply = Buffer.from(p)
        swapIpv4Addresses(reply, 0)
        icmpEchoRequestToReply(reply, 20)
        sendPacket(reply)
      } else {
        say('transport', { reason: 'ok', bytes: p.length })
      }
    }
  } else {
    const r = dev.handshakeMessage(msg, addr, rinfo.port, now, cfg.underLoad === true)
    drops[r.reason]!++
    say('handshake', { type, reason: WG_DROP_NAMES[r.reason], receiver: type >= 2 ? readU32(msg, type === 2 ? 8 : 4) : undefined })
    transmit(r.replies)
  }
})

const timer = setInterval(() => transmit(dev.tick(Date.now())), 20)

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    const c = JSON.parse(line) as { cmd: string, seq?: number, n?: number }
    if (c.cmd === 'ping') {
      sendPacket(echoRequest(c.seq ?? 1))
    } else if (c.cmd === 'bad-mac1') {
      say('sent', { kind: c.cmd, count: 1, sender: throwawayInitiations(1, true, true) })
    } else if (c.cmd === 'flood') {
      say('sent', { kind: c.cmd, count: c.n ?? 1000, sender: strangerInitiations(c.n ?? 1000) })
    } else if (c.cmd === 'flood-ahead') {
      floodAhead = c.n ?? 600
    } else if (c.cmd === 'stats') {
      say('stats', Object.fromEntries(drops.map((n, i) => [WG_DROP_NAMES[i], n])))
    }
  } catch (e) {
    say('error', { message: (e as Error).message })
  }
}).on('close', () => {
  clearInterval(timer)
  dev.close()
  sock.close()
})

sock.bind(cfg.listenPort, () => say('listening', { port: cfg.listenPort, publicKey: dev.publicKey.toString('base64'), ok: WgDrop.OK }))
