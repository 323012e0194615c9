// WireGuard keys as people and flannel handle them: 32 bytes, written in
// standard base64 with padding (44 characters, as `wg genkey` prints them),
// and flannel's key file.
//
// The key file (flannel v0.28, pkg/backend/wireguard/device.go, setupKeys
// and writePrivateKey): `/run/flannel/wgkey`, or the path in
// WIREGUARD_KEY_FILE. If it does not exist a key is generated and written;
// if it exists it is read and used, so a node keeps its public key across
// restarts. We write what flannel writes, so either can take over the file
// from the other: the base64 key with no trailing newline, mode 0400, its
// directory created 0755 if missing. Reading is as lenient as flannel's
// (Go's base64 skips newlines): surrounding whitespace is ignored, so a file
// made with `wg genkey > file` (which ends in a newline) is read too.
// Unlike flannel we write the file under a temporary name and link it into
// place, so two processes starting together agree on one key and nobody
// ever reads a half-written file.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { WeftError } from '../errors'
import { KEY_LEN, privateKeyObject, rawPublicKey } from './primitives'

export interface KeyPair {
  /** 32 bytes, clamped as `wg genkey` does. Owned by the holder: zero it when done. */
  readonly privateKey: Buffer
  readonly publicKey: Buffer
}

export const DEFAULT_KEY_FILE = '/run/flannel/wgkey'
export const KEY_FILE_ENV = 'WIREGUARD_KEY_FILE'
/** What flannel's writePrivateKey gives the key file. */
export const KEY_FILE_MODE = 0o400
const KEY_DIR_MODE = 0o755

/** A new private key: 32 random bytes clamped for X25519 (what `wg genkey` prints). */
export function generatePrivateKey (): Buffer {
  const k = randomBytes(KEY_LEN)
  k[0]! &= 248
  k[31] = (k[31]! & 127) | 64
  return k
}

/** The public key of a 32-byte private key (what `wg pubkey` prints). */
export function publicKeyOf (privateKey: Uint8Array): Buffer {
  return rawPublicKey(privateKeyObject(privateKey))
}

export function keyPairOf (privateKey: Buffer): KeyPair {
  return { privateKey, publicKey: publicKeyOf(privateKey) }
}

export function generateKeyPair (): KeyPair {
  return keyPairOf(generatePrivateKey())
}

/** Base64 with padding, as `wg` prints keys. */
export function encodeKey (key: Uint8Array): string {
  if (key.length !== KEY_LEN) throw new RangeError(`a WireGuard key is ${KEY_LEN} bytes, got ${key.length}`)
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('base64')
}

// As lenient as Go's base64.StdEncoding (flannel's wgtypes.ParseKey): the two
// unused bits of the last character are not checked.
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/

/**
 * A key from its base64 text (surrounding whitespace ignored). Throws
 * WeftError EWGKEY naming `what` ("private key", "preshared key", a file
 * name...) and never quoting the text, which may be a secret.
 */
export function parseKey (text: string, what = 'key'): Buffer {
  const t = text.trim()
  if (!BASE64_KEY.test(t)) {
    const why = t.length === 0 ? 'is empty' : t.length !== 44 ? `is ${t.length} characters, not the 44 of a base64 ${KEY_LEN}-byte key` : 'is not a base64 32-byte key'
    throw new WeftError('EWGKEY', `${what} ${why}`)
  }
  return Buffer.from(t, 'base64')
}

/** A preshared key (flannel's Backend.PSK) from base64; throws WeftError EWGKEY. */
export function parsePsk (text: string): Buffer {
  return parseKey(text, 'preshared key')
}

/** The key file's path: $WIREGUARD_KEY_FILE if set and not empty, else /run/flannel/wgkey. */
export function keyFilePath (env: NodeJS.ProcessEnv = process.env): string {
  const p = env[KEY_FILE_ENV]
  return p !== undefined && p !== '' ? p : DEFAULT_KEY_FILE
}

export interface LoadedKey {
  readonly keyPair: KeyPair
  readonly file: string
  /** true if this call generated the key and wrote the file */
  readonly created: boolean
}

/** loadOrCreateKey's key pair alone. */
export function loadOrCreateKeyFile (file: string = keyFilePath()): KeyPair {
  return loadOrCreateKey(file).keyPair
}

/**
 * Reads the key file, or creates it with a new key if it does not exist.
 * Throws WeftError EWGKEYFILE naming the file if it cannot be read, holds no
 * valid key, or cannot be written.
 */
export function loadOrCreateKey (file: string = keyFilePath()): LoadedKey {
  const existing = readKeyFile(file)
  if (existing !== undefined) return { keyPair: keyPairOf(existing), file, created: false }
  const key = generatePrivateKey()
  if (!linkNewKeyFile(file, encodeKey(key))) {
    // someone else created it between our read and our link: theirs wins
    key.fill(0)
    const theirs = readKeyFile(file)
    if (theirs === undefined) throw new WeftError('EWGKEYFILE', `${file}: appeared and vanished while being created`)
    return { keyPair: keyPairOf(theirs), file, created: false }
  }
  return { keyPair: keyPairOf(key), file, created: true }
}

/** The key in `file`, or undefined if there is no such file. */
function readKeyFile (file: string): Buffer | undefined {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new WeftError('EWGKEYFILE', `${file}: cannot read the WireGuard private key: ${(err as Error).message}`, { cause: err })
  }
  try {
    return parseKey(text, 'its content')
  } catch (err) {
    throw new WeftError('EWGKEYFILE', `${file}: not a WireGuard private key: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Writes `content` to a temporary file beside `file` and hard-links it into
 * place (link fails if the name exists, unlike rename). Returns false if
 * `file` already existed.
 */
function linkNewKeyFile (file: string, content: string): boolean {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let fd = -1
  try {
    fs.mkdirSync(dir, { recursive: true, mode: KEY_DIR_MODE })
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, KEY_FILE_MODE)
    fs.fchmodSync(fd, KEY_FILE_MODE)
    fs.writeFileSync(fd, content)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fd = -1
    try {
      fs.linkSync(tmp, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err
    }
    return true
  } catch (err) {
    throw new WeftError('EWGKEYFILE', `${file}: cannot write the WireGuard private key: ${(err as Error).message}`, { cause: err })
  } finally {
    if (fd >= 0) fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
  }
}
