// What the VXLAN backend needs of a peer's lease: BackendType vxlan and a
// VtepMAC in its BackendData ({"VNI":1,"VtepMAC":"..."}), as flannel writes it;
// and whether the peer takes remote checksum offload ("RemCsumRx": true, which
// weft adds and flannel never writes).
// flannel reads BackendData with Go's encoding/json, so "vtepMAC" or
// "VTEPMAC" (a lease written by hand) is the same key. The peer's VNI is
// not read: every node uses the one in the net-conf.
import { field } from '../../go-json'
import type { Lease } from '../../subnet/lease'
import { otherBackend } from '../backend'

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/**
 * Does the peer take VXLAN remote checksum offload? weft writes
 * "RemCsumRx": true into its BackendData when it does; flannel never does,
 * and ignores the key.
 */
export function peerTakesRemCsum (lease: Lease): boolean {
  const d = lease.attrs.backendData
  return d !== null && typeof d === 'object' && !Array.isArray(d) && field(d as Record<string, unknown>, 'RemCsumRx') === true
}

/**
 * The VTEP MAC from a vxlan lease's BackendData (family 4: flannel.<VNI>'s)
 * or BackendV6Data (family 6: flannel-v6.<VNI>'s, a MAC of its own), or why
 * it is unusable.
 */
export function peerMac (lease: Lease, family: 4 | 6 = 4): string | { reason: string } {
  const other = otherBackend(lease, 'vxlan')
  if (other !== undefined) return { reason: other }
  const d = family === 4 ? lease.attrs.backendData : lease.attrs.backendV6Data
  const mac = d !== null && typeof d === 'object' && !Array.isArray(d) ? field(d as Record<string, unknown>, 'VtepMAC') : undefined
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) return { reason: `its ${family === 4 ? 'BackendData' : 'BackendV6Data'} has no valid VtepMAC` }
  return mac.toLowerCase()
}

/** Does the peer's IPv6 device take remote checksum offload (RemCsumRx in BackendV6Data)? */
export function peerTakesRemCsum6 (lease: Lease): boolean {
  const d = lease.attrs.backendV6Data
  return d !== null && typeof d === 'object' && !Array.isArray(d) && field(d as Record<string, unknown>, 'RemCsumRx') === true
}
