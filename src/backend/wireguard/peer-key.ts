// What the WireGuard backend needs of a peer's lease: BackendType wireguard
// and flannel's BackendData {"PublicKey":"<base64>","Port":<port>}. flannel
// reads it with Go's encoding/json, so the keys match in any case; its
// endpoint is the lease's PublicIP and that Port. A lease without Port (0,
// as flanneld before v0.26.6 wrote them) means our own ListenPort, as
// flannel reads it.
// The IPv6 device (weft-wg-v6, flannel's flannel-wg-v6) reads the same from
// BackendV6Data {"PublicKey","Port": its ListenPortV6}.
import { field } from '../../go-json'
import type { Lease } from '../../subnet/lease'
import { isWireguardKey } from '../../subnet/config'
import { otherBackend } from '../backend'

export interface WireguardPeerData {
  /** the peer's static public key, 32 bytes */
  readonly publicKey: Buffer
  /** base64, as the lease and `wg` show it */
  readonly publicKeyText: string
  readonly port: number
}

/** The peer's key and port from a wireguard lease (no Port: `ownPort`), or why it is unusable; `family` 6 reads BackendV6Data. */
export function peerData (lease: Lease, ownPort: number, family: 4 | 6 = 4): WireguardPeerData | { reason: string } {
  const other = otherBackend(lease, 'wireguard')
  if (other !== undefined) return { reason: other }
  const name = family === 6 ? 'BackendV6Data' : 'BackendData'
  const d = family === 6 ? lease.attrs.backendV6Data : lease.attrs.backendData
  if (d === null || d === undefined || typeof d !== 'object' || Array.isArray(d)) return { reason: `its ${name} is not an object with PublicKey and Port` }
  const key = field(d as Record<string, unknown>, 'PublicKey')
  if (typeof key !== 'string' || !isWireguardKey(key)) return { reason: `its ${name} has no valid PublicKey (base64 of 32 bytes)` }
  const given = field(d as Record<string, unknown>, 'Port') ?? 0
  if (typeof given !== 'number' || !Number.isInteger(given) || given < 0 || given > 65535) return { reason: `its ${name} has no valid Port (0 to 65535)` }
  return { publicKey: Buffer.from(key, 'base64'), publicKeyText: key, port: given === 0 ? ownPort : given }
}

/**
 * flannel's single-device Modes (auto, ipv4, ipv6: one device for both
 * families): the peer's key (BackendData's, else BackendV6Data's: flannel
 * gives both the node's one key) and the port its one device listens on.
 * That is its ListenPort, which BackendData carries; flannel v0.28 aims an
 * IPv6 endpoint at BackendV6Data.Port, which its own nodes fill with
 * ListenPortV6 though nothing listens there in these Modes, so BackendData's
 * Port comes first here, then BackendV6Data's (an IPv6-only lease: weft
 * writes its ListenPort there), then our own ListenPort.
 */
export function singleDevicePeer (lease: Lease, ownPort: number): WireguardPeerData | { reason: string } {
  const has = (d: unknown): boolean => d !== null && d !== undefined
  const v4 = has(lease.attrs.backendData) ? peerData(lease, 0, 4) : undefined
  const v6 = has(lease.attrs.backendV6Data) ? peerData(lease, 0, 6) : undefined
  if (v4 !== undefined && 'reason' in v4) return v4
  if (v6 !== undefined && 'reason' in v6) return v6
  const key = v4 ?? v6
  if (key === undefined) {
    const other = otherBackend(lease, 'wireguard')
    return { reason: other ?? 'its lease has neither BackendData nor BackendV6Data' }
  }
  const port = v4 !== undefined && v4.port !== 0 ? v4.port : v6 !== undefined && v6.port !== 0 ? v6.port : ownPort
  return { publicKey: key.publicKey, publicKeyText: key.publicKeyText, port }
}
