// Typed errors with stable `code`s. Libraries throw these; only src/main.ts
// decides whether an error ends the process.

export class WeftError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'WeftError'
    this.code = code
  }
}

/** A failed system call. `code` is the errno name (EPERM, EBUSY, ...). */
export class SystemError extends WeftError {
  readonly errno: number
  readonly syscall: string

  constructor (code: string, message: string, errno: number, syscall: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'SystemError'
    this.errno = errno
    this.syscall = syscall
  }
}

interface NativeErrorShape { code?: unknown, errno?: unknown, syscall?: unknown, message?: unknown }

/**
 * Turn an error thrown by the native addon into a SystemError, adding a hint
 * a person can act on for the errors users actually meet (no /dev/net/tun,
 * no CAP_NET_ADMIN, a device name already taken).
 */
export function fromNative (err: unknown, hints: Partial<Record<string, string>> = {}): unknown {
  if (err === null || typeof err !== 'object') return err
  const e = err as NativeErrorShape
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string') return err
  const hint = hints[e.code] ?? GENERIC_HINTS[e.code]
  const message = hint !== undefined ? `${String(e.message)} (${hint})` : String(e.message)
  return new SystemError(e.code, message, typeof e.errno === 'number' ? e.errno : 0, e.syscall, { cause: err })
}

const GENERIC_HINTS: Partial<Record<string, string>> = {
  EPERM: 'needs CAP_NET_ADMIN (run as root or grant the capability)',
  EACCES: 'permission denied: needs root or CAP_NET_ADMIN'
}
