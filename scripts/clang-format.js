#!/usr/bin/env node
'use strict'
// clang-format over the C in native/src and bench/ (style: .clang-format).
// `--check` fails on any difference (npm run lint); `--fix` rewrites the
// files (npm run format). Without clang-format installed the check is
// reported as skipped, with the package that brings it (scripts/setup.sh
// installs it, so CI always checks).
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const dirs = ['native/src', 'bench']
const files = dirs.flatMap((d) => fs.readdirSync(path.join(root, d)).filter((f) => /\.(c|cc|h)$/.test(f)).map((f) => path.join(d, f)))
const fix = process.argv.includes('--fix')

if (spawnSync('clang-format', ['--version']).error !== undefined) {
  // CI installs it (scripts/setup.sh): there, a missing one is a failure
  const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'
  console.log(`clang-format: ${ci ? 'missing in CI' : 'skipped'}, not installed (apt-get install clang-format): the C in native/ was not checked`)
  process.exit(ci ? 1 : 0)
}
const r = spawnSync('clang-format', fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files], { cwd: root, stdio: 'inherit' })
if (r.status !== 0) {
  if (!fix) console.error('clang-format: the C above is not formatted; `npm run format` fixes it')
  process.exit(r.status ?? 1)
}
if (!fix) console.log(`clang-format: ${files.length} C files formatted`)
