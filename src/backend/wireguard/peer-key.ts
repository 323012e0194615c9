// What the WireGuard backend needs of a peer's lease: BackendType wireguard
// and flannel's BackendData {"PublicKey":"<base64>","Port":<port>}. flannel
// reads it with Go's encoding/json, so the keys match in any case; its
// endpoint is the lease's PublicIP and that Port.
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

/** The peer's key and port from a wireguard lease, or why it is unusable. */
export function peerData (lease: Lease): WireguardPeerData | { reason: string } {
  const other = otherBackend(lease, 'wireguard')
  if (other !== undefined) return { reason: other }
  const d = lease.attrs.backendData
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return { reason: 'its BackendData is not an object with PublicKey and Port' }
  const key = field(d as Record<string, unknown>, 'PublicKey')
  if (typeof key !== 'string' || !isWireguardKey(key)) return { reason: 'its BackendData has no valid PublicKey (base64 of 32 bytes)' }
  const port = field(d as Record<string, unknown>, 'Port')
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return { reason: 'its BackendData has no valid Port (1 to 65535)' }
  return { publicKey: Buffer.from(key, 'base64'), publicKeyText: key, port }
}
