// CPU and memory accounting for the benchmarks, the soak and the tests that
// watch a daemon's memory: per-process CPU time and RSS from /proc, and how
// busy the whole machine was. The machine is shared, so every benchmark that
// times a path also says how loaded the cores were.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'

// utime/stime in /proc are in clock ticks; almost always 100, but ask.
const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
})()

export interface CpuTimes { user: number, sys: number, main: number }

/** utime and stime (fields 14 and 15) of /proc/<pid>[/task/<tid>]/stat, in seconds. */
function readStat (file: string): { user: number, sys: number } {
  const text = fs.readFileSync(file, 'utf8')
  // comm (field 2) may hold spaces and parentheses: split after the last ')'
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK }
}

/** The process' whole thread group, and its main thread alone (the JS event loop, where the dataplane runs). */
export function cpuOf (pid: number): CpuTimes {
  const all = readStat(`/proc/${pid}/stat`)
  const main = readStat(`/proc/${pid}/task/${pid}/stat`)
  return { user: all.user, sys: all.sys, main: main.user + main.sys }
}

/** VmRSS (now) and VmHWM (the peak so far) of a process, in MiB; 0 if the process is gone. */
export function memoryOf (pid: number): { rssMiB: number, peakMiB: number } {
  let text: string
  try { text = fs.readFileSync(`/proc/${pid}/status`, 'utf8') } catch { return { rssMiB: 0, peakMiB: 0 } }
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0)
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 }
}

/**
 * The daemon's node process. topo.spawn runs `ip netns exec NS node ...`;
 * `ip` execs into node, so the pid is usually node's already, but if some
 * `ip` forks instead, the node process is its child.
 */
export function nodePid (pid: number): number {
  const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  if (comm !== 'ip') return pid
  const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  const node = kids.find((k) => fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() !== 'ip')
  if (node === undefined) throw new Error(`no node process under pid ${pid} (${comm})`)
  return node
}

export interface Ticks { user: number, sys: number, softirq: number, busy: number, total: number }

/** Ticks of the whole machine (first line of /proc/stat), to show how full the cores were and with what. */
export function machineTicks (): Ticks {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest is already in user)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return { user: f[0] + f[1], sys: f[2], softirq: f[5] + f[6], busy: total - f[3] - f[4], total }
}

export interface Cores { busy: number, user: number, sys: number, softirq: number }

/** Cores busy between two samples (share of all ticks times the core count). */
export function coresBetween (a: Ticks, b: Ticks): Cores {
  const k = os.cpus().length / Math.max(1, b.total - a.total)
  return { busy: (b.busy - a.busy) * k, user: (b.user - a.user) * k, sys: (b.sys - a.sys) * k, softirq: (b.softirq - a.softirq) * k }
}

/**
 * Cores something else keeps busy while nothing of ours runs. The paths
 * share the cores with whatever else the machine does, so a busy machine
 * shows up here instead of silently lowering the numbers.
 */
export async function backgroundLoad (ms = 1000): Promise<number> {
  const a = machineTicks()
  await new Promise((resolve) => setTimeout(resolve, ms))
  return coresBetween(a, machineTicks()).busy
}
