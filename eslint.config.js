'use strict'
// Lint and format: neostandard (standard's rules for ESLint 9 flat config,
// with TypeScript), the style the tree is written in: no semicolons, two
// spaces, single quotes, a space before a function's parentheses.
// `npm run lint` checks, `npm run format` fixes what can be fixed.
const neostandard = require('neostandard')

module.exports = [
  ...neostandard({ ts: true, ignores: ['dist/**', 'build/**', 'node_modules/**', 'bench/results/**'] }),
  {
    rules: {
      // `void promise` marks a promise deliberately not awaited (its errors are handled inside)
      'no-void': ['error', { allowAsStatement: true }],
      // it cannot see a flag set by a callback or a signal handler, which is
      // how every loop it flagged here ends
      'no-unmodified-loop-condition': 'off'
    }
  }
]
