// Another process holding a SQLite store's lock: BEGIN EXCLUSIVE on the
// database for --seconds, then ROLLBACK. Prints "locked" once it holds the
// lock and "unlocked" when it lets go. Bounded: it exits after --seconds
// (and SIGTERM, which the test harness sends at teardown, ends it too).
//
// usage: hold-lock --db PATH --seconds N
import Database from 'better-sqlite3'
import { arg } from '../../lab/fixtures/args'

const seconds = Number(arg('seconds'))
if (!(seconds > 0 && seconds <= 60)) throw new Error(`--seconds must be in (0, 60], got ${arg('seconds')}`)
const db = new Database(arg('db'), { timeout: 5000 })
db.exec('BEGIN EXCLUSIVE')
process.stdout.write('locked\n')
setTimeout(() => { // the lock is held for --seconds: what this fixture is for
  db.exec('ROLLBACK')
  db.close()
  process.stdout.write('unlocked\n')
}, seconds * 1000)
