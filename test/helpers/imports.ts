// Reading a tree's imports as text, for the tests that hold the house to
// its layout (test/house/layers.test.ts, test/lab/boundaries.test.ts).
import fs from 'node:fs'
import path from 'node:path'

/** Every .ts file below `dir`. */
export function tsFiles (dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [])
}

/** The relative specifiers a file imports, requires or re-exports from ('./x', '../y/z'). */
export function relativeImports (file: string): string[] {
  return [...fs.readFileSync(file, 'utf8').matchAll(/(?:from|import|require\()\s*['"](\.{1,2}\/[^'"]*)['"]/g)].map((m) => m[1])
}
