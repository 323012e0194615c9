#!/usr/bin/env node
'use strict'
// Runs every compiled test file (dist/test/**/*.test.js) on node:test.
// Node 20's --test takes no globs, so the files are listed here. Extra
// arguments narrow the run: `npm test -- packet` runs files whose path
// contains "packet".
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..', 'dist', 'test')
const filters = process.argv.slice(2)

function walk (dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) walk(p, out)
    else if (entry.name.endsWith('.test.js')) out.push(p)
  }
  return out
}

// matched against the path under dist/test, so a checkout's own folder name never matches
const files = walk(root, []).sort().filter((f) => filters.length === 0 || filters.some((s) => path.relative(root, f).includes(s)))
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
const reporter = process.env.WEFT_TEST_REPORTER || 'spec'
const res = spawnSync(process.execPath, ['--test', `--test-reporter=${reporter}`, '--test-concurrency=1', ...files], { stdio: 'inherit' })
process.exit(res.status === null ? 1 : res.status)
