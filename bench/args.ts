// One argument parser for every bench entry: node:util's parseArgs, strict,
// so a misspelt flag stops the run instead of quietly measuring the
// defaults, and `--help` printing the flags with their defaults from the
// same table. The checks the benches share are here too.
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { CONGESTION_NAME } from '../lab/traffic'

/** parseArgs's option table; `hint` names a value without a default in the usage line (parseArgs ignores it). */
type Options = Record<string, NonNullable<ParseArgsConfig['options']>[string] & { hint?: string }>

/**
 * The flags of `dist/bench/<name>.js`, parsed from argv (default: this
 * process's). Values are strings or booleans as parseArgs gives them; each
 * bench turns and checks its own numbers.
 */
export function benchArgs<const O extends Options> (name: string, options: O, argv: string[] = process.argv.slice(2)) {
  if (argv.includes('--help')) {
    process.stdout.write(usage(name, options) + '\n')
    // a bench's flags are read before anything is set up, so nothing is left to tear down
    process.exit(0)
  }
  return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values
}

export function usage (name: string, options: Options): string {
  const flags = Object.entries(options).map(([flag, o]) =>
    o.type === 'boolean' ? `[--${flag}]` : `[--${flag} ${o.hint ?? (o.default !== undefined ? String(o.default) : 'VALUE')}]`)
  return `usage: node dist/bench/${name}.js ${flags.join(' ')}`
}

/**
 * A number flag in min..max; `above` makes min exclusive (`(min, max]`),
 * `integer` refuses fractions. The message names the flag and what it got.
 */
export function numberFlag (flag: string, value: string, o: { min: number, max: number, integer?: boolean, above?: boolean }): number {
  const x = Number(value)
  const ok = (o.integer !== true || Number.isInteger(x)) && (o.above === true ? x > o.min : x >= o.min) && x <= o.max
  if (!ok) throw new RangeError(`--${flag} must be ${o.above === true ? `in (${o.min}, ${o.max}]` : `${o.min}..${o.max}`}, got ${value}`)
  return x
}

/** `--congestion NAME`: the TCP senders' algorithm (iperf3 -C); 'default' leaves the machine's (undefined). */
export function congestionOption (value: string): string | undefined {
  if (value === 'default') return undefined
  if (!CONGESTION_NAME.test(value)) throw new RangeError(`--congestion takes an algorithm such as cubic or bbr, or default, got ${value}`)
  return value
}
