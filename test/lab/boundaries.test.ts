// Who may import whom among the top-level folders: lab/ (the namespace
// harness) is shared by test/ and bench/, so it stands on src/ alone, and
// bench/ never reaches into test/ (a bench must not break when a test's
// helper changes). test/bench/ is the one place test/ imports bench/: the
// benches' own unit tests.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { relativeImports, tsFiles } from '../helpers/imports'

const ROOT = path.join(__dirname, '..', '..', '..')

const ALLOWED: Record<string, string[]> = {
  lab: ['lab', 'src'],
  bench: ['bench', 'lab', 'src'],
  test: ['test', 'lab', 'src']
}

test('lab/ imports only lab/ and src/; bench/ only bench/, lab/ and src/; test/ only test/, lab/ and src/ (test/bench/ also bench/)', () => {
  const wrong: string[] = []
  for (const [top, allowed] of Object.entries(ALLOWED)) {
    for (const f of tsFiles(path.join(ROOT, top))) {
      const rel = path.relative(ROOT, f)
      const ok = rel.startsWith(path.join('test', 'bench') + path.sep) ? [...allowed, 'bench'] : allowed
      for (const spec of relativeImports(f)) {
        const target = path.relative(ROOT, path.resolve(path.dirname(f), spec))
        const ttop = target.split(path.sep)[0]
        if (ttop === '..' || ttop === 'package.json') continue
        if (!ok.includes(ttop)) wrong.push(`${rel} imports ${spec}`)
      }
    }
  }
  assert.deepEqual(wrong, [])
})
