// Naming scheme for every namespace the test harness creates.
//
// Names look like `wt-<runid>-u` / `wt-<runid>-h1`, where the run id starts
// with the creating process's pid in base36. Encoding the pid lets a later
// run recognise leftovers from a crashed run (pid no longer alive) and reap
// them, without ever touching namespaces owned by a run that is still going
// (e.g. another test file running in parallel).

export const NS_PREFIX = 'wt-'

let counter = 0

/** `<pid base36>-<counter base36><3 random base36 chars>`, e.g. `2k7-0f3q`. */
export function newRunId (): string {
  const rand = Math.floor(Math.random() * 36 ** 3)
    .toString(36)
    .padStart(3, '0')
  return `${process.pid.toString(36)}-${(counter++).toString(36)}${rand}`
}

/** The pid encoded in a harness namespace name, or undefined if it is not one of ours. */
export function creatorPid (nsName: string): number | undefined {
  if (!nsName.startsWith(NS_PREFIX)) return undefined
  const m = /^([0-9a-z]{1,8})-[0-9a-z]/.exec(nsName.slice(NS_PREFIX.length))
  if (!m) return undefined
  const pid = parseInt(m[1]!, 36)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/** True if a process with this pid exists (EPERM means it exists but is not ours). */
export function pidAlive (pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
