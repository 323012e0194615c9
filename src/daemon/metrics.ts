// /metrics in Prometheus text format (prom-client). Dataplane numbers are read
// from the counters the pipeline already keeps (Float64Arrays) when scraped,
// so the hot path does nothing extra for metrics. Control-plane events
// (renewals, store errors, watch batches) are counted as they happen.
// Batch sizes come as packets_total / batches_total per direction, the form
// Prometheus divides best (rate(packets) / rate(batches)).
//
// A scrape runs on the dataplane's thread, and the network's status() is
// not free (it walks the whole peer table and reads sysfs): so a scrape
// takes ONE status snapshot, which every collector reads, and a snapshot
// serves the scrapes of the next `maxAgeMs` (1 s) too: scrapes in a loop
// call status() at most once a second. (Each collector used to call it, 13
// calls a scrape; with nothing limiting the rate either, a scrape loop on
// 16 connections took a pod-to-pod TCP stream through the node to 3% of
// its rate: bench/scrape.ts.) Prometheus scrapes every 15 s or more and
// never sees the difference; the dataplane's counters may lag by up to
// that second. The control plane's (store, lease, peer events, HTTP
// refusals) are read fresh every time: they cost nothing, and a test or an
// alert that acts on an outage should not see the one before.
//
// Per-peer series are labelled with the peer's subnet, and /metrics is
// served to anyone who reaches --healthz-port. The subnets and the nodes
// that hold them are no secret (the store, every node's routes); what the
// series add is how much this node exchanges with each peer. Where that
// matters, bind the port to the node (--healthz-ip 127.0.0.1) or firewall it.
//
// The WireGuard backend's own families (weft_wireguard_*) exist only on a
// node that runs it: on any other their HELP and TYPE are all there is.
import { Counter, Gauge, Registry } from 'prom-client'
import type { NetworkStatus } from '../backend/backend'
import { WG_DROP_NAMES } from '../wireguard/reasons'

/** What the WireGuard backend's snapshot() adds to the counters (src/backend/wireguard/loops.ts). */
export interface WireguardCounters {
  /** handshakes completed, as initiator or responder */
  handshakes?: number
  /** of those, the ones we started with a peer we had had a handshake with */
  rekeys?: number
  /** messages refused (or packets not sent), by WG_DROP_NAMES reason; only the non-zero ones */
  drops?: Record<string, number>
  /** WireGuard peers (leases with a usable key) */
  peers?: number
}

type Status = NetworkStatus & { counters: { drops?: Record<string, number>, counters?: Record<string, number>, tun?: Record<string, number>, sock?: Record<string, number>, wireguard?: WireguardCounters }, ipv6?: Status }

/** A status and, on a dual-stack node, its IPv6 half's (src/backend/tun/dual.ts). */
function halves (s: Status | undefined): Status[] {
  if (s === undefined) return []
  return s.ipv6 !== undefined ? [s, s.ipv6] : [s]
}

/** A per-peer series' label: the peer's subnet (an IPv6 table entry's IPv6 subnet). */
function peerLabel (p: Record<string, unknown>): string {
  return String(p.subnet ?? p.subnet6)
}

/** Every reason weft_wireguard_drops_total has a series for (WG_DROP_NAMES but "ok"). */
export const WIREGUARD_DROP_REASONS: readonly string[] = WG_DROP_NAMES.slice(1)

export class Metrics {
  readonly registry = new Registry()
  readonly renewals: Counter
  readonly storeErrors: Counter<'op'>
  readonly storeOutages: Counter
  readonly storeUp: Gauge
  readonly watchBatches: Counter
  readonly lastWatchEvent: Gauge
  readonly peerEvents: Counter<'type'>
  readonly httpRefused: Counter<'server' | 'reason'>
  private readonly maxAgeMs: number
  private readonly now: () => number
  /** the last status() and when it was taken (in a box: the network may have none yet) */
  private taken: { at: number, s: Status | undefined } | undefined
  /** the status of the scrape being rendered */
  private current: { s: Status | undefined } | undefined
  private rendering: Promise<string> | undefined
  /** store entries (or Nodes) that are not valid leases, each counted once; set once the lease manager exists */
  skippedLeases: () => number = () => 0

  /**
   * storeDownForMs: how long the current store outage has lasted (0 while it answers);
   * maxAgeMs: how long a status snapshot serves later scrapes (default 1000; 0: each takes its own)
   */
  constructor (private readonly status: () => Status | undefined, storeDownForMs: () => number = () => 0, o: { maxAgeMs?: number, now?: () => number } = {}) {
    this.maxAgeMs = o.maxAgeMs ?? 1000
    this.now = o.now ?? (() => performance.now())
    const r = [this.registry]
    // outside text() (registry.metrics() called directly) every collector asks for itself
    const snapshot = (): Status | undefined => this.current !== undefined ? this.current.s : status()
    this.renewals = new Counter({ name: 'weft_lease_renewals_total', help: 'Lease renewals that succeeded', registers: r })
    this.storeErrors = new Counter({ name: 'weft_store_errors_total', help: 'Failed store calls, each retried with backoff, by what was being done (config, acquire, watch, renew, restore)', labelNames: ['op'], registers: r })
    this.storeOutages = new Counter({ name: 'weft_store_outages_total', help: 'Times the store became unreachable (each outage counted once, however many retries)', registers: r })
    this.storeUp = new Gauge({ name: 'weft_store_up', help: '1 while the store answers, 0 while it is unreachable (forwarding goes on from the cached peers)', registers: r })
    this.storeUp.set(1)
    // eslint-disable-next-line no-new
    new Gauge({ name: 'weft_store_outage_seconds', help: 'How long the current store outage has lasted, 0 while the store answers', registers: r, collect () { this.set(storeDownForMs() / 1000) } })
    this.watchBatches = new Counter({ name: 'weft_store_watch_batches_total', help: 'Batches of lease changes received from the store', registers: r })
    this.lastWatchEvent = new Gauge({ name: 'weft_store_last_watch_batch_timestamp_seconds', help: 'When the last batch of lease changes arrived (watch lag: time() minus this, while peers change)', registers: r })
    this.peerEvents = new Counter({ name: 'weft_peer_events_total', help: 'Peers added to or removed from the forwarding table', labelNames: ['type'], registers: r })
    this.httpRefused = new Counter({ name: 'weft_http_refused_total', help: 'HTTP requests and connections refused, by server (healthz: --healthz-port, control: the control socket) and reason (bad_request, headers_too_large, timeout, connections, rate, method, bad_target, not_found, handler_error); each reason is logged once, at warn', labelNames: ['server', 'reason'], registers: r })

    const counter = (name: string, help: string, labelNames: string[], fill: (s: Status, set: (labels: Record<string, string>, v: number) => void) => void): void => {
      // eslint-disable-next-line no-new
      new Counter({
        name,
        help,
        labelNames,
        registers: r,
        collect () {
          this.reset()
          // a dual-stack node's two halves add up in each series (inc), its
          // per-peer series apart by their subnets
          for (const half of halves(snapshot())) fill(half, (labels, v) => this.inc(labels, v))
        }
      })
    }
    const num = (o: Record<string, number> | undefined, k: string): number => o?.[k] ?? 0
    // what the kernel carried for the peers (the peer offload), per direction and unit
    const offloaded = (s: Status, k: 'offloadPackets' | 'offloadInPackets' | 'offloadBytes' | 'offloadInBytes'): number => s.peers.reduce((n, p) => n + Number(p[k] ?? 0), 0)
    counter('weft_packets_total', 'Packets carried (by weft\'s pipeline or, with the peer offload, the kernel), inside = pods to the network, outside = network to pods', ['direction'], (s, set) => {
      set({ direction: 'inside' }, num(s.counters.counters, 'inside_packets') + offloaded(s, 'offloadPackets'))
      set({ direction: 'outside' }, num(s.counters.counters, 'outside_packets') + offloaded(s, 'offloadInPackets'))
    })
    counter('weft_bytes_total', 'Inner bytes carried, by direction', ['direction'], (s, set) => {
      set({ direction: 'inside' }, num(s.counters.counters, 'inside_bytes') + offloaded(s, 'offloadBytes'))
      set({ direction: 'outside' }, num(s.counters.counters, 'outside_bytes') + offloaded(s, 'offloadInBytes'))
    })
    counter('weft_kernel_packets_total', 'Of weft_packets_total, those the kernel carried through the peer offload\'s programs', ['direction'], (s, set) => {
      set({ direction: 'inside' }, offloaded(s, 'offloadPackets'))
      set({ direction: 'outside' }, offloaded(s, 'offloadInPackets'))
    })
    counter('weft_batches_total', 'Batches handled (one JS call each), by direction', ['direction'], (s, set) => {
      set({ direction: 'inside' }, num(s.counters.counters, 'inside_batches'))
      set({ direction: 'outside' }, num(s.counters.counters, 'outside_batches'))
    })
    counter('weft_drops_total', 'Packets dropped, by reason', ['reason'], (s, set) => {
      for (const [k, v] of Object.entries(s.counters.drops ?? {})) set({ reason: k }, v)
      set({ reason: 'tun_read_truncated' }, num(s.counters.tun, 'rxDropTruncated'))
      set({ reason: 'socket_read_truncated' }, num(s.counters.sock, 'rxDropTruncated'))
      set({ reason: 'socket_send_error' }, num(s.counters.sock, 'txDropError') + num(s.counters.sock, 'txDropTooBig') + num(s.counters.sock, 'txDropUnreachable'))
      set({ reason: 'bad_super_packet' }, num(s.counters.sock, 'txDropBadGso'))
      // dropped by the kernel before we could read them: the TUN queue was full
      set({ reason: 'tun_queue_full' }, s.tunQueueDrops ?? 0)
    })
    counter('weft_offload_packets_total', 'Work the kernel offloads saved: super-packets read from the TUN, segments cut from them, datagrams sent and received in UDP_SEGMENT/UDP_GRO batches, segments coalesced into super-packets written to the TUN; segments whose inner checksum was left to the peer and datagrams taken so (VXLAN remote checksum offload); super-packets a same-host kernel peer sent unsegmented', ['stage'], (s, set) => {
      set({ stage: 'tun_super_packets_read' }, num(s.counters.counters, 'inside_super_packets'))
      set({ stage: 'segments_cut' }, num(s.counters.sock, 'txSegmented'))
      set({ stage: 'gso_datagrams_sent' }, num(s.counters.sock, 'txGsoSegments'))
      set({ stage: 'gro_datagrams_received' }, num(s.counters.sock, 'rxGroSegments'))
      set({ stage: 'segments_coalesced' }, num(s.counters.counters, 'outside_coalesced'))
      set({ stage: 'tun_super_packets_written' }, num(s.counters.counters, 'outside_super_packets'))
      set({ stage: 'checksums_left_to_peer' }, num(s.counters.sock, 'txCsumPartial'))
      set({ stage: 'checksums_left_by_peer' }, num(s.counters.counters, 'outside_partial_checksums'))
      set({ stage: 'unsegmented_super_packets_received' }, num(s.counters.counters, 'outside_unsegmented'))
    })
    counter('weft_busy_poll_total', 'Busy polling (--busy-poll): light batches that found the loop awake (caught), and times heavy traffic began, holding polling off for 100 ms (suspended)', ['event'], (s, set) => {
      set({ event: 'caught' }, num(s.counters.counters, 'busy_poll_caught'))
      set({ event: 'suspended' }, num(s.counters.counters, 'busy_poll_suspended'))
    })
    counter('weft_busy_poll_seconds_total', 'Time the dataplane spent busy-polling and found nothing (--busy-poll): CPU spent for latency', [], (s, set) => {
      set({}, num(s.counters.counters, 'busy_poll_ns') / 1e9)
    })
    counter('weft_udp_pacing_waits_total', 'Waits of UDP bound for pods behind the pacer (WEFT_UDP_PACING), one per piece held back: when a batch read from the underlay holds more than the pacer lets into the TUN at once (about 40 full-size datagrams, under half a default socket buffer), the rest goes in pieces at WEFT_UDP_PACING times (default 2) the rate it arrived, so that a receiving pod is not handed it whole. It grows when the daemon reads late (its core was busy); TCP is never held; 0 with WEFT_UDP_PACING=off', [], (s, set) => {
      set({}, num(s.counters.counters, 'outside_paced'))
    })
    counter('weft_ipv6_fragments_received_total', 'IPv6 fragments that came through the tunnel and went to the pods (whole: the kernel reassembles them)', [], (s, set) => {
      set({}, num(s.counters.counters, 'outside_ipv6_fragments'))
    })
    counter('weft_syscalls_total', 'Packet I/O system calls, by device and direction', ['device', 'direction'], (s, set) => {
      for (const d of ['tun', 'sock'] as const) {
        set({ device: d, direction: 'rx' }, num(s.counters[d], 'rxSyscalls'))
        set({ device: d, direction: 'tx' }, num(s.counters[d], 'txSyscalls'))
      }
    })
    counter('weft_eagain_total', 'I/O calls the kernel answered with EAGAIN (rx: nothing queued; tx: queue full, backpressure)', ['device', 'direction'], (s, set) => {
      for (const d of ['tun', 'sock'] as const) {
        set({ device: d, direction: 'rx' }, num(s.counters[d], 'rxEagain'))
        set({ device: d, direction: 'tx' }, num(s.counters[d], 'txEagain'))
      }
    })
    counter('weft_peer_packets_total', 'Packets per peer and direction', ['peer', 'direction'], (s, set) => {
      for (const p of s.peers) {
        set({ peer: peerLabel(p), direction: 'inside' }, Number(p.insidePackets ?? 0))
        set({ peer: peerLabel(p), direction: 'outside' }, Number(p.outsidePackets ?? 0))
      }
    })
    counter('weft_peer_bytes_total', 'Inner bytes per peer and direction', ['peer', 'direction'], (s, set) => {
      for (const p of s.peers) {
        set({ peer: peerLabel(p), direction: 'inside' }, Number(p.insideBytes ?? 0))
        set({ peer: peerLabel(p), direction: 'outside' }, Number(p.outsideBytes ?? 0))
      }
    })

    // --- WireGuard (Backend.Type wireguard) ---------------------------------
    // Failed handshakes are not a family of their own: the backend counts
    // each refused message by its reason only, and several reasons
    // (bad_length, bad_type, decrypt_failed, unknown_receiver_index) befall
    // handshake and transport messages alike. So one family,
    // weft_wireguard_drops_total{reason}, has every reason, each a series
    // from the start (0 until it happens: a fixed set, WG_DROP_NAMES, so
    // rate() and alerts work before the first drop), and its HELP says which reasons
    // are handshakes'. Completed handshakes and rekeys are counters of their
    // own; per peer only the latest handshake's time, labelled by subnet as
    // the other per-peer families (no key label: a key names the same peer
    // as its subnet, and changes with the node's key file).
    const wireguard = (s: Status | undefined): WireguardCounters | undefined => s?.counters.wireguard
    // a dual-stack node in Mode separate has two devices (weft-wg, weft-wg-v6): the families sum both
    const wireguards = (s: Status | undefined): WireguardCounters[] => halves(s).map(wireguard).filter((w): w is WireguardCounters => w !== undefined)
    const wgFamily = (name: string, help: string, labelNames: string[], fill: (wg: WireguardCounters, set: (labels: Record<string, string>, v: number) => void) => void): void => {
      // eslint-disable-next-line no-new
      new Counter({
        name,
        help,
        labelNames,
        registers: r,
        collect () {
          this.reset()
          const wgs = wireguards(snapshot())
          // reset() leaves an unlabelled counter at 0: on another backend, no series at all
          if (wgs.length === 0) { if (labelNames.length === 0) this.remove({}); return }
          for (const wg of wgs) fill(wg, (labels, v) => this.inc(labels, v))
        }
      })
    }
    wgFamily('weft_wireguard_handshakes_total', 'WireGuard handshakes completed: a new session with a peer, this node initiating or responding (the side that started a session renews it every 2 minutes while traffic flows). Handshakes that failed are in weft_wireguard_drops_total, by reason', [], (wg, set) => {
      set({}, wg.handshakes ?? 0)
    })
    wgFamily('weft_wireguard_rekeys_total', 'WireGuard handshakes this node started with a peer it had had a session with before: the renewal every 2 minutes, or a new session after a peer was away; a subset of weft_wireguard_handshakes_total', [], (wg, set) => {
      set({}, wg.rekeys ?? 0)
    })
    wgFamily('weft_wireguard_drops_total', 'WireGuard messages refused, and pod packets not sent, by reason. Handshakes: bad_mac1 (not meant for our key, or corrupted), bad_mac2 (under load without a valid cookie: a cookie reply went back), rate_limited (under load, a source past 20 handshakes a second; or past 128 in one read), unknown_peer (a key no lease holds), stale_timestamp (a replayed initiation), handshake_flood (a second initiation from a peer within 20 ms), bad_key, bad_cookie, no_key_slot. Transport: unknown_receiver_index (no session by that index: an old one, or a peer that restarted), replay, key_expired (a session past 180 s), no_session (a pod packet for a peer without a session, past the 16 kept while its handshake is on its way). Any message: bad_length, bad_type, decrypt_failed (failed authentication: forged or corrupted). Decrypted packets refused for what they hold (spoofed_source, ...) are in weft_drops_total', ['reason'], (wg, set) => {
      const drops = wg.drops ?? {}
      for (const reason of WIREGUARD_DROP_REASONS) set({ reason }, drops[reason] ?? 0)
      // a reason newer than this list still shows
      for (const [reason, v] of Object.entries(drops)) if (!WIREGUARD_DROP_REASONS.includes(reason)) set({ reason }, v)
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'weft_wireguard_peers',
      help: 'WireGuard peers: other nodes\' leases with a usable key (one whose key is ours or another lease\'s is counted in weft_peers, not here)',
      registers: r,
      collect () {
        this.reset()
        const wgs = wireguards(snapshot())
        if (wgs.length === 0) this.remove({})
        else this.set(wgs.reduce((n, wg) => n + (wg.peers ?? 0), 0))
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({
      name: 'weft_wireguard_peer_last_handshake_timestamp_seconds',
      help: 'When the latest WireGuard handshake with each peer completed (Unix time; 0: none yet). Its age is time() minus this: while traffic flows (or PersistentKeepaliveInterval keeps it flowing) a session is renewed every 2 minutes, and none is used past 3, so an age past 180 s means no session now: an idle peer, or one that cannot be reached',
      labelNames: ['peer'],
      registers: r,
      collect () {
        this.reset()
        for (const h of halves(snapshot())) {
          if (wireguard(h) === undefined) continue
          for (const p of h.peers) {
            if (typeof p.publicKey !== 'string') continue // a lease that is no WireGuard peer
            const t = typeof p.latestHandshake === 'string' ? Date.parse(p.latestHandshake) : NaN
            this.set({ peer: peerLabel(p) }, Number.isFinite(t) ? t / 1000 : 0)
          }
        }
      }
    })

    // eslint-disable-next-line no-new
    new Gauge({
      name: 'weft_offload_enabled',
      help: 'Kernel offloads in use (1) or refused or off (0): tso, uso (TUN), gro, gso (UDP socket); WEFT_OFFLOADS=off turns all off',
      labelNames: ['offload'],
      registers: r,
      collect () {
        this.reset()
        const o = snapshot()?.offloads
        if (o !== undefined) for (const k of ['tso', 'uso', 'gro', 'gso']) this.set({ offload: k }, o[k] === true ? 1 : 0)
      }
    })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'weft_peers', help: 'Peers in the forwarding table (dual stack: IPv4 and IPv6 entries, a peer of both counted in each)', registers: r, collect () { this.set(halves(snapshot()).reduce((n, h) => n + h.peers.length, 0)) } })
    const self = this
    // eslint-disable-next-line no-new
    new Gauge({ name: 'weft_skipped_leases', help: 'Store entries (in kube mode: Nodes with flannel\'s annotations) that are not valid leases, each named once in the log at warn and skipped', registers: r, collect () { this.set(self.skippedLeases()) } })
    // eslint-disable-next-line no-new
    new Gauge({ name: 'weft_address_conflicts', help: 'Public IPs more than one lease claims (a misconfigured node, or a store writer borrowing an address): traffic from each is taken for all its claimants\' subnets', registers: r, collect () { this.set(snapshot()?.conflicts?.length ?? 0) } })
  }

  /** The Prometheus text, from one status snapshot, which is at most maxAgeMs old. */
  text (): Promise<string> {
    // scrapes that arrive together share one render
    if (this.rendering !== undefined) return this.rendering
    const p = this.render()
    this.rendering = p
    const done = (): void => { if (this.rendering === p) this.rendering = undefined }
    p.then(done, done)
    return p
  }

  private async render (): Promise<string> {
    const now = this.now()
    if (this.taken === undefined || now - this.taken.at >= this.maxAgeMs) this.taken = { at: now, s: this.status() }
    this.current = { s: this.taken.s }
    try {
      return await this.registry.metrics()
    } finally {
      this.current = undefined
    }
  }
}
