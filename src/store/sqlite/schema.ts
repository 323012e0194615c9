// The embedded store's tables. One file, shared by every weft process on the
// host (WAL lets readers proceed while one writer commits).
//
//   kv    the live leases: subnet key -> lease JSON, expiry, last revision;
//         the key is flannel's whole key, "10.244.1.0-24" or dual-stack
//         "10.244.1.0-24&fc00::-64" (IPv6-only "0.0.0.0-0&fc00::-64"): a
//         TEXT column already, so IPv6 needed no new schema and a store
//         written before it opens unchanged
//   log   every change, numbered: the revision. Watches read it from a
//         revision on; old rows are trimmed (compaction) and `compacted`
//         remembers how far, so a watcher that fell behind takes a snapshot
//   meta  the network config and the compaction mark
export const SCHEMA_VERSION = 1

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  expires_at INTEGER,            -- ms since the epoch; NULL = reservation
  mod_rev    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
  rev        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after trimming
  key        TEXT NOT NULL,
  value      TEXT,                               -- NULL = delete
  expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
`

/** Rows of history kept before the oldest are trimmed. */
export const LOG_KEEP = 10_000
