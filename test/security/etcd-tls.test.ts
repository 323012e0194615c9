// `weft run` on an etcd that requires client certificates
// (--client-cert-auth), with a CA, server and client certificates the test
// makes with openssl. etcd runs in the topology's underlay namespace on
// 198.18.0.254, so the daemons in the host namespaces reach it over the
// underlay as nodes reach a cluster's etcd. --etcd-cafile, --etcd-certfile
// and --etcd-keyfile go from the flags to the client's TLS credentials: the
// daemon with the client certificate leases; without one, or with one from
// another CA, it stops with ETLS, saying why, and takes nothing.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { makeTlsFiles, startEtcd } from '../../lab/etcd'
import { withTopology } from '../../lab/netns'
import type { Host } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const HOST = '198.18.0.254'
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('etcd', 'etcdctl', 'openssl')

test('on etcd with client-certificate auth, a daemon with the client certificate leases; one without, or with a certificate from another CA, stops with ETLS saying why, and takes nothing', { skip, timeout: 60_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tls-'))
  const tls = makeTlsFiles({ ips: [HOST] })
  const foreign = makeTlsFiles({ ips: [HOST] }) // its own CA, which etcd does not trust
  t.after(() => { for (const d of [dir, tls.dir, foreign.dir]) fs.rmSync(d, { recursive: true, force: true }) })

  await withTopology(t, { hosts: 3, label: 'etcd-tls' }, async (topo) => {
    await topo.exec(topo.underlayNs, ['ip', 'addr', 'add', `${HOST}/24`, 'dev', 'br0'])
    const etcd = await startEtcd({
      netns: topo.underlayNs,
      host: HOST,
      tls: { caFile: tls.caFile, certFile: tls.serverCert, keyFile: tls.serverKey, clientCertAuth: true, clientCertFile: tls.clientCert, clientKeyFile: tls.clientKey }
    })
    try {
      assert.equal(etcd.endpoint, `https://${HOST}:2379`)
      const ctl = async (...args: string[]): Promise<string> => (await topo.exec(topo.underlayNs, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', etcd.endpoint,
        '--cacert', tls.caFile, '--cert', tls.clientCert, '--key', tls.clientKey, '--command-timeout=3s', ...args], { timeoutMs: 10_000 })).stdout
      await ctl('put', '/coreos.com/network/config', CONFIG)

      const weft = (cmd: string[], creds: string[]): string[] =>
        [process.execPath, BIN, ...cmd, '--etcd-endpoints', etcd.endpoint, ...creds]
      const run = (h: Host, creds: string[]) => topo.spawn(h, weft(['run', '--subnet-file', `${dir}/${h.name}/subnet.env`, '--state-dir', `${dir}/${h.name}`, '--iface', 'eth0'], creds))
      const [h1, h2, h3] = [topo.hosts[0]!, topo.hosts[1]!, topo.hosts[2]!]
      const withCert = ['--etcd-cafile', tls.caFile, '--etcd-certfile', tls.clientCert, '--etcd-keyfile', tls.clientKey]
      const noCert = ['--etcd-cafile', tls.caFile]
      const otherCa = ['--etcd-cafile', tls.caFile, '--etcd-certfile', foreign.clientCert, '--etcd-keyfile', foreign.clientKey]
      const good = run(h1, withCert)
      const bare = run(h2, noCert)
      const alien = run(h3, otherCa)

      // a one-shot command without the certificate, meanwhile (it too waits out the dial)
      const once = topo.exec(h2, weft(['leases'], noCert), { allowFail: true, timeoutMs: 20_000 })

      await good.waitForLine(/"msg":"running"/, 20_000)
      const keys = (await ctl('get', '--prefix', '--keys-only', '/coreos.com/network/subnets/')).split('\n').filter((l) => l !== '')
      assert.equal(keys.length, 1, 'the daemon with the certificate holds a lease in etcd')
      assert.match(await ctl('get', '--print-value-only', keys[0]!), /"PublicIP":"198\.18\.0\.1"/)

      // A certificate refused is no outage to wait out: once the dial gives
      // up, the daemon stops with ETLS and says why, instead of retrying.
      const bareLine = await bare.waitForLine(/client certificate/, 20_000)
      assert.match(bareLine, new RegExp(`etcd at https://${HOST.replace(/\./g, '\\.')}:2379 .*bad certificate.*\\(etcd asks for a client certificate: give --etcd-certfile and --etcd-keyfile\\)`))
      const alienLine = await alien.waitForLine(/client certificate/, 20_000)
      assert.match(alienLine, /\(etcd rejected our client certificate: check --etcd-certfile, --etcd-keyfile and the CA etcd trusts\)/)
      for (const d of [bare, alien]) {
        const exit = await d.exited
        assert.equal(exit.code, 1, `${d.stderr.slice(-400)}`)
        assert.doesNotMatch(d.stderr, /leased a new subnet|"msg":"running"|lost the store|retrying/)
        const lines = d.stderr.split('\n').filter((l) => l !== '')
        assert.match(lines[lines.length - 1] ?? '', /^weft: etcd at https:\/\/198\.18\.0\.254:2379 failed the TLS handshake: .*client certificate.*\) \[ETLS\]$/)
      }
      assert.equal((await ctl('get', '--prefix', '--keys-only', '/coreos.com/network/subnets/')).split('\n').filter((l) => l !== '').length, 1, 'still one lease')

      // A one-shot command fails with a typed error and the same reason.
      const r = await once
      assert.equal(r.code, 1)
      // (Node warns first that the TLS server name is an IP address: grpc always sends one)
      const said = r.stderr.split('\n').find((l) => l.startsWith('weft: ')) ?? r.stderr
      assert.match(said, /^weft: etcd at https:\/\/198\.18\.0\.254:2379 .*\(etcd asks for a client certificate: give --etcd-certfile and --etcd-keyfile\) \[ETLS\]$/)
      t.diagnostic(said)

      // and the good one still answers through its certificate
      const ok = await topo.exec(h1, weft(['leases'], withCert), { timeoutMs: 20_000 })
      assert.match(ok.stdout, /10\.244\.\d+\.0\/24\s+198\.18\.0\.1\s+vxlan/)
      // (a daemon still dialling etcd finishes that dial, up to 5 s, before it stops)
      await Promise.all([good, bare, alien].map(async (d) => await d.stop(8000)))
    } finally {
      await etcd.stop()
    }
  })
})
