// CNI errors as the spec defines them: a JSON object on stdout
// {"cniVersion","code","msg","details"} and a non-zero exit. Codes 1-99 are
// the spec's; a delegate's own error is passed through as it came.
export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51
} as const

export class CniError extends Error {
  readonly code: number
  readonly details: string

  constructor (code: number, msg: string, details = '') {
    super(msg)
    this.name = 'CniError'
    this.code = code
    this.details = details
  }

  toJSON (cniVersion: string): Record<string, unknown> {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details !== '' ? { details: this.details } : {}) }
  }
}
