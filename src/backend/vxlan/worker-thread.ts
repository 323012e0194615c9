// One extra VXLAN pipeline on its own thread (see workers.ts):
// 1. wrap the TUN queue and UDP socket it was given, with its counters in
//    the shared buffer the main thread reads
// 2. build the same Pipeline as the main thread's, over its own Fdb copy
// 3. apply the main thread's table and subnet changes as they come, between
//    batches (this thread's event loop runs both)
// 4. on 'close': close both fds and let the thread end
// It never logs: a fatal I/O error is reported to the main thread, which does.
import { parentPort, workerData } from 'node:worker_threads'
import { PacketIo } from '../../native/io'
import { parseMac } from '../../packet/mac'
import { Fdb } from '../../dataplane/fdb'
import { Pipeline } from '../../dataplane/pipeline'
import { VxlanEncap } from './encap'
import { sharedCounters } from './workers'
import type { WorkerMessage, WorkerReport, WorkerSpec } from './workers'

const spec = workerData as WorkerSpec
const port = parentPort
if (port === null) throw new Error('worker-thread.js runs as a worker thread only')

const shared = sharedCounters(spec.fdb.capacity, spec.shared).views
// each fd closes with this thread once wrapped: the main thread closes one it never took
const tun = new PacketIo(spec.tunFd, 'fd', spec.batch, shared.tun)
port.postMessage({ op: 'took', fd: 'tun' } satisfies WorkerReport)
const sock = new PacketIo(spec.sockFd, 'udp4', spec.batch, shared.sock)
port.postMessage({ op: 'took', fd: 'sock' } satisfies WorkerReport)
const fdb = new Fdb({ ...spec.fdb, perPeer: shared.perPeer })
const pipeline = new Pipeline({
  tun,
  sock,
  fdb,
  encap: new VxlanEncap(spec.vxlan.vni, parseMac(spec.vxlan.mac), fdb, spec.vxlan.remCsum),
  mtu: spec.mtu,
  batch: spec.batch,
  offloads: spec.offloads,
  busyPollUs: spec.busyPollUs,
  stats: shared.stats,
  unknownSources: shared.unknown,
  spoofSenders: shared.spoofed,
  checkSource: spec.checkSource,
  onFatal: (where, errno) => { port.postMessage({ op: 'fatal', where, errno } satisfies WorkerReport) }
})

port.on('message', (m: WorkerMessage) => {
  switch (m.op) {
    case 'set':
      fdb.set(m.subnet, m.publicIP, m.mac === undefined ? undefined : Buffer.from(m.mac), m.port, m.remCsum)
      break
    case 'delete':
      fdb.delete(m.subnet)
      break
    case 'own':
      pipeline.setOwnSubnet(m.ip, m.prefixLen)
      break
    case 'local':
      pipeline.setLocalAddresses(m.addrs)
      break
    case 'close':
      pipeline.close()
      port.close()
      break
  }
})
pipeline.start()
