// subnet.env is what the CNI plugin reads on every pod start: flanneld's exact
// bytes, replaced atomically, and read back as leniently as godotenv reads it
// but with errors that name the key.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { WeftError } from '../../src/errors'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { formatCidr6, networkOf6, parseCidr6 } from '../../src/packet/net6'
import {
  FLANNEL_IPV6_NETWORK,
  FLANNEL_IPV6_SUBNET,
  FLANNEL_IPMASQ,
  FLANNEL_MTU,
  FLANNEL_NETWORK,
  FLANNEL_SUBNET,
  formatSubnetEnv,
  parseSubnetEnv,
  readSubnetEnv,
  writeSubnetEnv
} from '../../src/subnet/env'

function tmpdir (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-subnet-env-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const ENV = { network: parseCidr('10.244.0.0/16'), subnet: parseCidr('10.244.1.0/24'), mtu: 1450, ipMasq: false }
const TEXT = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n'

/** Parsing `text` fails with ESUBNETENV and a message matching `re`. */
function rejects (text: string, re: RegExp): void {
  assert.throws(() => parseSubnetEnv(text, '/run/flannel/subnet.env'), (err: unknown) => {
    assert.ok(err instanceof WeftError, `not a WeftError: ${String(err)}`)
    assert.equal(err.code, 'ESUBNETENV')
    assert.match(err.message, /^\/run\/flannel\/subnet\.env: /)
    assert.match(err.message, re)
    return true
  })
}

test('the key names are flannel\'s', () => {
  assert.deepEqual([FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ], ['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_MTU', 'FLANNEL_IPMASQ'])
})

test('writes flanneld\'s exact bytes: subnet as its first address, fixed order, LF endings', (t) => {
  const file = path.join(tmpdir(t), 'subnet.env')
  writeSubnetEnv(file, ENV)
  assert.equal(fs.readFileSync(file, 'utf8'), TEXT)
  assert.equal(fs.statSync(file).mode & 0o777, 0o644)
  assert.equal(formatSubnetEnv({ network: parseCidr('10.5.0.0/16'), subnet: parseCidr('10.5.52.0/24'), mtu: 1472, ipMasq: true }),
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n')
})

test('round-trips: what is written reads back as the lease network', (t) => {
  const file = path.join(tmpdir(t), 'subnet.env')
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 28 }), fc.integer({ min: 68, max: 65535 }), fc.boolean(), (ip, len, mtu, ipMasq) => {
    const network = { ip: (ip & ~((1 << (32 - len + 2)) - 1)) >>> 0, prefixLen: len - 2 }
    const subnet = { ip: (ip & ~((1 << (32 - len)) - 1)) >>> 0, prefixLen: len }
    writeSubnetEnv(file, { network, subnet, mtu, ipMasq })
    assert.deepEqual(readSubnetEnv(file), { network, subnet, mtu, ipMasq })
  }), { numRuns: 200 })
})

test('creates the directory (0755) when it is missing', (t) => {
  const dir = path.join(tmpdir(t), 'run', 'flannel')
  writeSubnetEnv(path.join(dir, 'subnet.env'), ENV)
  assert.equal(fs.statSync(dir).mode & 0o777, 0o755 & ~process.umask())
  assert.equal(fs.readFileSync(path.join(dir, 'subnet.env'), 'utf8'), TEXT)
})

test('replaces an existing file whole and leaves no temporary file behind', (t) => {
  const dir = tmpdir(t)
  const file = path.join(dir, 'subnet.env')
  fs.writeFileSync(file, 'OLD=' + 'x'.repeat(4096) + '\n', { mode: 0o600 })
  const before = fs.statSync(file).ino
  writeSubnetEnv(file, ENV)
  assert.equal(fs.readFileSync(file, 'utf8'), TEXT)
  assert.notEqual(fs.statSync(file).ino, before, 'a new inode: renamed into place, not rewritten')
  assert.equal(fs.statSync(file).mode & 0o777, 0o644)
  assert.deepEqual(fs.readdirSync(dir), ['subnet.env'])
})

test('a failed write throws ESUBNETENV, keeps the old file and cleans up', (t) => {
  const dir = tmpdir(t)
  // the target is a directory, so the final rename fails after the temp file was written
  const file = path.join(dir, 'subnet.env')
  fs.mkdirSync(path.join(file, 'inside'), { recursive: true })
  assert.throws(() => writeSubnetEnv(file, ENV), { code: 'ESUBNETENV', message: /subnet\.env: cannot write/ })
  assert.deepEqual(fs.readdirSync(dir), ['subnet.env'])
  assert.throws(() => formatSubnetEnv({ ...ENV, mtu: 0 }), { code: 'ESUBNETENV', message: /FLANNEL_MTU 0/ })
})

test('a file that does not exist reads as undefined', (t) => {
  assert.equal(readSubnetEnv(path.join(tmpdir(t), 'nope', 'subnet.env')), undefined)
})

test('an unreadable path is ESUBNETENV, not undefined', (t) => {
  assert.throws(() => readSubnetEnv(tmpdir(t)), { code: 'ESUBNETENV', message: /cannot read/ })
})

test('reads what godotenv reads: comments, blank lines, quotes, spaces, export, CRLF', () => {
  const text = [
    '# written by hand',
    '',
    'export FLANNEL_NETWORK = "10.5.0.0/16"',
    "FLANNEL_SUBNET='10.5.52.1/24'",
    '  FLANNEL_MTU=1450   # vxlan',
    'FLANNEL_IPMASQ=true',
    'OTHER=ignored'
  ].join('\r\n')
  const env = parseSubnetEnv(text)
  assert.equal(formatCidr(env.network!), '10.5.0.0/16')
  // the file names the bridge address; the lease is its network
  assert.equal(formatCidr(env.subnet!), '10.5.52.0/24')
  assert.equal(env.mtu, 1450)
  assert.equal(env.ipMasq, true)
})

test('FLANNEL_NETWORK may list several networks: the first of each family is kept (the IPv6 one when FLANNEL_IPV6_NETWORK is absent)', () => {
  const env = parseSubnetEnv('FLANNEL_NETWORK=fd00::/56,10.42.0.0/16,10.43.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\nFLANNEL_IPV6_SUBNET=fd00:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  assert.equal(formatCidr(env.network!), '10.42.0.0/16')
  assert.equal(formatCidr(env.subnet!), '10.42.3.0/24')
  assert.equal(formatCidr6(env.network6!), 'fd00::/56')
  assert.equal(formatCidr6(env.subnet6!), 'fd00:0:0:3::/64')
})

// flanneld's WriteSubnetFile for a dual-stack lease: the IPv4 lines, then the
// IPv6 ones (each subnet as its first address, IncrementIP), then MTU and masquerading
const DUAL_TEXT = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n' +
  'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n'
const DUAL = { ...ENV, network6: parseCidr6('fc00::/48'), subnet6: parseCidr6('fc00:0:0:1::/64') }

test('dual stack: flanneld\'s exact bytes, in its order, and read back the same', (t) => {
  assert.deepEqual([FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET], ['FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET'])
  const file = path.join(tmpdir(t), 'subnet.env')
  writeSubnetEnv(file, DUAL)
  assert.equal(fs.readFileSync(file, 'utf8'), DUAL_TEXT)
  assert.deepEqual(readSubnetEnv(file), DUAL)
})

test('IPv6-only: no IPv4 lines at all (EnableIPv4 false), and a file with IPv6 alone reads back', () => {
  const v6 = { network6: parseCidr6('fd00:10:244::/56'), subnet6: parseCidr6('fd00:10:244:a::/64'), mtu: 1430, ipMasq: true }
  const text = formatSubnetEnv(v6)
  assert.equal(text, 'FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:a::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n')
  assert.deepEqual(parseSubnetEnv(text), v6)
  // the CNI plugin's list form: the first entry is kept
  assert.equal(formatCidr6(parseSubnetEnv(text.replace('fd00:10:244::/56', 'fd00:10:244::/56,fd00:99::/56')).network6!), 'fd00:10:244::/56')
})

test('IPv6 round trip: any /N network and subnet read back as written, the file naming the first address', () => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 8, max: 126 }), (ip, len) => {
    const network6 = networkOf6({ ip, prefixLen: len - 2 })
    const subnet6 = networkOf6({ ip, prefixLen: len })
    const text = formatSubnetEnv({ network6, subnet6, mtu: 1500, ipMasq: false })
    assert.deepEqual(parseSubnetEnv(text), { network6, subnet6, mtu: 1500, ipMasq: false })
  }), { numRuns: 300 })
})

test('IPv6 keys: a half family and bad values are named', () => {
  const v6 = 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n'
  rejects(v6.replace('FLANNEL_IPV6_NETWORK=fc00::/48\n', ''), /FLANNEL_IPV6_NETWORK is missing$/)
  rejects(v6.replace('FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\n', ''), /FLANNEL_IPV6_SUBNET is missing$/)
  rejects(v6 + 'FLANNEL_SUBNET=10.244.1.1/24\n', /FLANNEL_NETWORK is missing$/)
  rejects(v6.replace('fc00::/48', '10.0.0.0/8'), /FLANNEL_IPV6_NETWORK "10\.0\.0\.0\/8": "10\.0\.0\.0\/8" is not an IPv6 CIDR/)
  rejects(v6.replace('fc00:0:0:1::1/64', 'fc00:0:0:1::1/129'), /FLANNEL_IPV6_SUBNET "fc00:0:0:1::1\/129": not an IPv6 CIDR/)
  assert.throws(() => formatSubnetEnv({ network6: parseCidr6('fc00::/48'), mtu: 1450, ipMasq: false }), { code: 'ESUBNETENV', message: /FLANNEL_IPV6_NETWORK without FLANNEL_IPV6_SUBNET/ })
  assert.throws(() => formatSubnetEnv({ mtu: 1450, ipMasq: false }), { code: 'ESUBNETENV', message: /at least one family/ })
})

test('the last assignment of a key wins', () => {
  assert.equal(parseSubnetEnv(TEXT + 'FLANNEL_MTU=1400\n').mtu, 1400)
})

test('missing keys are named', () => {
  rejects(TEXT.replace('FLANNEL_MTU=1450\n', ''), /^\/run\/flannel\/subnet\.env: FLANNEL_MTU is missing$/)
  rejects('FLANNEL_NETWORK=10.244.0.0/16\n', /FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ are missing$/)
  rejects('', /FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ are missing/)
  // "KEY value" is not an assignment
  rejects(TEXT.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ false'), /FLANNEL_IPMASQ is missing/)
})

test('bad values name the key and the value', () => {
  rejects(TEXT.replace('10.244.0.0/16', '10.244.0.0'), /FLANNEL_NETWORK "10\.244\.0\.0": "10\.244\.0\.0" is not an IPv4 CIDR/)
  rejects(TEXT.replace('10.244.0.0/16', 'fd00::/56'), /FLANNEL_NETWORK "fd00::\/56": no IPv4 network/)
  rejects(TEXT.replace('10.244.1.1/24', '10.244.1.1/33'), /FLANNEL_SUBNET "10\.244\.1\.1\/33": not an IPv4 CIDR/)
  rejects(TEXT.replace('1450', '1450.5'), /FLANNEL_MTU "1450\.5": must be an integer/)
  rejects(TEXT.replace('1450', '-1'), /FLANNEL_MTU "-1"/)
  rejects(TEXT.replace('1450', '0'), /FLANNEL_MTU "0"/)
  rejects(TEXT.replace('IPMASQ=false', 'IPMASQ=yes'), /FLANNEL_IPMASQ "yes": must be true or false/)
  rejects(TEXT.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU="1450'), /FLANNEL_MTU: unterminated double quote/)
})

test('any text: a SubnetEnv or ESUBNETENV, nothing else', () => {
  const line = fc.oneof(
    fc.constantFrom(...TEXT.split('\n')),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.tuple(fc.constantFrom(FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ), fc.string({ maxLength: 20 })).map(([k, v]) => `${k}=${v}`),
    fc.constantFrom(...DUAL_TEXT.split('\n'))
  )
  fc.assert(fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom('\n', '\r\n', '\r'), (lines, eol) => {
    try {
      const env = parseSubnetEnv(lines.join(eol))
      assert.ok(env.mtu >= 68 && env.mtu <= 65535)
      assert.equal(typeof env.ipMasq, 'boolean')
      assert.ok((env.network !== undefined) === (env.subnet !== undefined) && (env.network6 !== undefined) === (env.subnet6 !== undefined))
      assert.ok(env.network !== undefined || env.network6 !== undefined, 'at least one family')
    } catch (err) {
      if (!(err instanceof WeftError) || err.code !== 'ESUBNETENV') throw err
    }
  }), { numRuns: 2000 })
})
