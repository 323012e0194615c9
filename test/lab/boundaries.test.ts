// Who may import whom among the top-level folders: lab/ (the namespace
// harness) is shared by test/ and bench/, so it stands on src/ alone, and
// bench/ never reaches into test/ (a bench must not break when a test's
// helper changes). test/bench/ is the one place test/ imports bench/: the
// benches' own unit tests.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

const ROOT = path.join(__dirname, '..', '..', '..')

const ALLOWED: Record<string, string[]> = {
  lab: ['lab', 'src'],
  bench: ['bench', 'lab', 'src'],
  test: ['test', 'lab', 'src']
}

function files (dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [])
}

test('lab/ imports only lab/ and src/; bench/ only bench/, lab/ and src/; test/ only test/, lab/ and src/ (test/bench/ also bench/)', () => {
  const wrong: string[] = []
  for (const [top, allowed] of Object.entries(ALLOWED)) {
    for (const f of files(path.join(ROOT, top))) {
      const rel = path.relative(ROOT, f)
      const ok = rel.startsWith(path.join('test', 'bench') + path.sep) ? [...allowed, 'bench'] : allowed
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/(?:from|import|require\()\s*['"](\.{1,2}\/[^'"]*)['"]/g)) {
        const target = path.relative(ROOT, path.resolve(path.dirname(f), m[1]))
        const ttop = target.split(path.sep)[0]
        if (ttop === '..' || ttop === 'package.json') continue
        if (!ok.includes(ttop)) wrong.push(`${rel} imports ${m[1]}`)
      }
    }
  }
  assert.deepEqual(wrong, [])
})
