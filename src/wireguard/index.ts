// WireGuard's protocol in TypeScript: keys, the Noise_IKpsk2 handshake,
// cookies, replay protection, per-peer sessions and timers. The per-packet
// cipher and the dataplane loops are elsewhere (src/native/wg.ts, the
// backend); src/wireguard/uapi.ts serves the `wg` tool.
export * from './constants'
export { WgDrop, WG_DROP_NAMES, type WgDropCode } from './reasons'
export {
  DEFAULT_KEY_FILE,
  encodeKey,
  generateKeyPair,
  generatePrivateKey,
  KEY_FILE_ENV,
  KEY_FILE_MODE,
  keyFilePath,
  keyPairOf,
  loadOrCreateKey,
  loadOrCreateKeyFile,
  parseKey,
  parsePsk,
  publicKeyOf,
  type KeyPair,
  type LoadedKey,
} from './keys'
export * from './messages'
export { Device, type DeviceHooks, type DeviceOptions, type HandshakeOutcome, type TransportOutcome } from './device'
export { Peer, formatEndpoint, type Endpoint, type Outgoing, type OutgoingKind, type PeerOptions } from './peer'
export { Keypair, openTransport, sealTransport } from './session'
export { IndexTable } from './index-table'
export { ReplayWindow, REPLAY_WINDOW } from './replay'
export { HandshakeRateLimiter } from './ratelimiter'
