import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { REASON_COUNT, REASON_NAMES, Reason } from '../../src/packet'

test('reason codes are 0..n-1, OK is 0, and REASON_NAMES[code] is the lower-case key', () => {
  const entries = Object.entries(Reason)
  assert.equal(Reason.OK, 0)
  assert.equal(REASON_COUNT, entries.length)
  assert.deepEqual(entries.map(([, v]) => v).sort((a, b) => a - b), [...Array(entries.length).keys()])
  for (const [key, code] of entries) assert.equal(REASON_NAMES[code], key.toLowerCase())
})

// The per-packet modules promise no allocation, closures, string work or
// exceptions. A cheap guard against regressions: scan their source (comments
// stripped) for the syntax those need. errors.ts, ip.ts and the string half
// of mac.ts are off the hot path and exempt.
const HOT = ['bytes', 'checksum', 'ethernet', 'arp', 'ipv4', 'ipv6', 'udp', 'tcp', 'icmp', 'icmp6', 'vxlan']
const SRC_DIR = join(__dirname, '..', '..', '..', 'src', 'packet') // from dist/test/packet

for (const mod of HOT) {
  test(`hot-path module ${mod}.ts has no throw, new, closures, template strings or array/object literals`, () => {
    const code = readFileSync(join(SRC_DIR, `${mod}.ts`), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
      .replace(/'[^'\n]*'/g, "''") // import paths
    for (const [what, re] of [
      ['throw', /\bthrow\b/],
      ['new', /\bnew\s/],
      ['arrow function', /=>/],
      ['template string', /`/],
      ['array literal', /[=(,]\s*\[/],
      ['object literal', /[=(,]\s*\{/],
      ['string concatenation', /\+\s*''|''\s*\+/],
    ] as const) {
      assert.doesNotMatch(code, re, `${mod}.ts: ${what}`)
    }
  })
}
