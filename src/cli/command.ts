// The shape every subcommand has. Commands return an exit code; only
// src/main.ts turns it (or a thrown error) into process.exit.
export interface Io {
  out: (line: string) => void
  err: (line: string) => void
}

export interface Command {
  name: string
  summary: string
  usage: string
  run: (argv: string[], io: Io) => Promise<number>
}
