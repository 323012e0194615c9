// The house's floors: every import in src/ runs down, never up or sideways
// between folders, so a reader can take the folders in this order and find
// each one's parts below it. A new folder must be given its floor here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { relativeImports, tsFiles } from '../helpers/imports'

const SRC = path.join(__dirname, '..', '..', '..', 'src')

/** Lower numbers import higher ones. Files at src/'s top (errors, log, ...) are the ground floor. */
const FLOORS: Record<string, number> = {
  'main.ts': 0,
  cli: 1,
  daemon: 2,
  cni: 2,
  demo: 2,
  backend: 3,
  kube: 3,
  dataplane: 4,
  lease: 4,
  store: 5,
  subnet: 6,
  kernel: 6,
  capture: 6,
  wireguard: 6,
  packet: 7,
  native: 7,
  util: 8
}
const GROUND = 9

function floorOf (rel: string): number {
  const top = rel.split(path.sep)[0]
  if (FLOORS[top] !== undefined) return FLOORS[top]
  if (!rel.includes(path.sep)) return GROUND
  throw new Error(`src/${top}/ has no floor in test/house/layers.test.ts: give it one`)
}

test('every import in src/ runs down the floors main > cli > daemon, cni, demo > backend, kube > dataplane, lease > store > subnet, kernel, capture, wireguard > packet, native > util > the top-level files', () => {
  const wrong: string[] = []
  for (const f of tsFiles(SRC)) {
    const rel = path.relative(SRC, f)
    const top = rel.split(path.sep)[0]
    for (const spec of relativeImports(f)) {
      const target = path.relative(SRC, path.resolve(path.dirname(f), spec))
      if (target.startsWith('..')) continue // package.json
      const ttop = target.split(path.sep)[0]
      if (ttop === top) continue
      const folder = fs.existsSync(path.join(SRC, target)) && fs.statSync(path.join(SRC, target)).isDirectory()
      const [a, b] = [floorOf(rel), floorOf(folder || target.includes(path.sep) ? path.join(target, 'x') : `${target}.ts`)]
      if (a === GROUND && b === GROUND) continue
      if (b <= a) wrong.push(`src/${rel} imports ${spec}`)
    }
  }
  assert.deepEqual(wrong, [])
})
