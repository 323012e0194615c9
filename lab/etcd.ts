// A throwaway single-member etcd for tests and bench/watch-latency:
// Debian's /usr/bin/etcd on free loopback ports with a temporary data dir
// (or, with `netns`, on the etcd ports of an address inside a test
// namespace, for daemons running in the topology's hosts). Everything is
// bounded (start, stop) and the process is killed by PID, never by name; a
// process 'exit' hook is the safety net for a run that dies without its
// after hooks.
import { execFile, execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait'
import { forgetOnExit, stopChild, killOnExit, waitStopped } from './proc'

export interface EtcdTls {
  caFile: string
  certFile: string
  keyFile: string
  /** require client certificates signed by caFile (--client-cert-auth) */
  clientCertAuth: boolean
  /** a client certificate the readiness probe can present */
  clientCertFile: string
  clientKeyFile: string
}

export interface EtcdOptions {
  /** serve clients over https with these files */
  tls?: EtcdTls
  /**
   * run etcd inside this network namespace (e.g. a topology's underlay), on
   * `host`'s ports 2379 and 2380; the namespace is fresh, so they are free
   */
  netns?: string
  /** the address to listen on; default 127.0.0.1 (with netns: an address the test put there) */
  host?: string
}

export interface EtcdHandle {
  readonly endpoint: string
  readonly dataDir: string
  readonly pid: number | undefined
  stop (): Promise<void>
  /** SIGSTOP: the process holds its sockets but answers nothing */
  pause (): void
  /** SIGCONT */
  resume (): void
  /** stop, then start again on the same ports with the same data */
  restart (): Promise<void>
}

const ETCD = 'etcd' // Debian's etcd-server: /usr/bin/etcd, found on PATH as toolSkipReason checks
const START_TIMEOUT_MS = 20_000
const STOP_GRACE_MS = 3000

/** A port the kernel says is free on 127.0.0.1 right now. */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      s.close(() => { typeof addr === 'object' && addr !== null ? resolve(addr.port) : reject(new Error('no port')) })
    })
  })
}

/** etcd's /health over http(s), true when it says so; bounded by a 1 s timeout. */
function healthy (endpoint: string, tls: EtcdTls | undefined, netns: string | undefined): Promise<boolean> {
  if (netns !== undefined) return healthyIn(netns, endpoint, tls)
  return new Promise((resolve) => {
    const url = `${endpoint}/health`
    const opts = tls === undefined
      ? { timeout: 1000 }
      : { timeout: 1000, ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) }
    const req = (tls === undefined ? http : https).get(url, opts, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

/** The same from inside a namespace, where our own sockets cannot go: `etcdctl endpoint health`, bounded by 3 s. */
function healthyIn (netns: string, endpoint: string, tls: EtcdTls | undefined): Promise<boolean> {
  const creds = tls === undefined ? [] : ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile]
  const argv = ['netns', 'exec', netns, 'etcdctl', `--endpoints=${endpoint}`, '--dial-timeout=1s', '--command-timeout=1s', ...creds, 'endpoint', 'health']
  return new Promise((resolve) => {
    execFile('ip', argv, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 3000, killSignal: 'SIGKILL' }, (err) => resolve(err === null))
  })
}

export async function startEtcd (opts: EtcdOptions = {}): Promise<EtcdHandle> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-etcd-'))
  const host = opts.host ?? '127.0.0.1'
  const clientPort = opts.netns !== undefined ? 2379 : await freePort()
  const peerPort = opts.netns !== undefined ? 2380 : await freePort()
  const scheme = opts.tls === undefined ? 'http' : 'https'
  const endpoint = `${scheme}://${host}:${clientPort}`
  const peer = `http://${host}:${peerPort}`
  const args = [
    '--name', 'weft-test',
    '--data-dir', join(dataDir, 'data'),
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `weft-test=${peer}`,
    '--initial-cluster-state', 'new',
    // tests compact by hand and must see history until they do
    '--auto-compaction-retention', '0'
  ]
  if (opts.tls !== undefined) {
    args.push('--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile, '--trusted-ca-file', opts.tls.caFile)
    if (opts.tls.clientCertAuth) args.push('--client-cert-auth')
  }
  // etcd refuses to start on arches upstream does not support (anything but
  // amd64 and, since 3.5, arm64) unless ETCD_UNSUPPORTED_ARCH names the arch, in Go's words
  const goarch: Partial<Record<string, string>> = { ia32: '386', ppc64: 'ppc64le' }
  const env = { ...process.env, ...(process.arch === 'x64' ? {} : { ETCD_UNSUPPORTED_ARCH: goarch[process.arch] ?? process.arch }) }
  const logFile = join(dataDir, 'etcd.log')

  let child: ChildProcess | undefined
  const kill = (): void => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
  const cleanup = (): void => { kill(); rmSync(dataDir, { recursive: true, force: true }) }
  killOnExit(cleanup)

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a')
    try {
      // `ip netns exec` execs etcd in place: the pid stays etcd's, for kill()
      child = opts.netns === undefined
        ? spawn(ETCD, args, { stdio: ['ignore', fd, fd], env })
        : spawn('ip', ['netns', 'exec', opts.netns, ETCD, ...args], { stdio: ['ignore', fd, fd], env })
    } finally { closeSync(fd) }
    const c = child
    c.on('error', () => { /* reported through the readiness wait below */ })
    try {
      await waitFor(async () => {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`etcd exited (${c.exitCode ?? c.signalCode})`)
        return healthy(endpoint, opts.tls, opts.netns)
      }, { what: `etcd at ${endpoint} to answer /health`, timeoutMs: START_TIMEOUT_MS, intervalMs: 100 })
    } catch (err) {
      kill()
      throw new Error(`${(err as Error).message}; log ${logFile}:\n${tail(logFile)}`)
    }
  }

  const halt = async (): Promise<void> => {
    if (child !== undefined) await stopChild(child, STOP_GRACE_MS, kill)
  }

  try {
    await launch()
  } catch (err) {
    cleanup()
    forgetOnExit(cleanup)
    throw err
  }
  return {
    endpoint,
    dataDir,
    get pid () { return child?.pid },
    async stop () {
      await halt()
      cleanup()
      forgetOnExit(cleanup)
    },
    pause () {
      if (child?.pid === undefined) return
      process.kill(child.pid, 'SIGSTOP')
      waitStopped(child.pid, 'etcd')
    },
    resume () { if (child?.pid !== undefined) process.kill(child.pid, 'SIGCONT') },
    async restart () {
      await halt()
      await launch()
    }
  }
}

function tail (file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return '(no log)'
  }
}

/** `etcdctl` (API v3) against `endpoint`; returns stdout. Bounded to 10 s. */
export function etcdctl (endpoint: string, args: string[], extra: string[] = [], input?: string): string {
  return execFileSync('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=5s', ...extra, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    encoding: 'utf8',
    timeout: 10_000,
    input,
    stdio: ['pipe', 'pipe', 'pipe']
  })
}

export interface TlsFiles {
  dir: string
  caFile: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

/**
 * A CA plus a server certificate (for 127.0.0.1, or the addresses given) and
 * a client certificate, made with openssl in a temp dir. Each call makes a
 * new CA, so two calls give certificates that do not trust each other. The
 * caller removes `dir`.
 */
export function makeTlsFiles (opts: { ips?: readonly string[] } = {}): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'weft-etcd-tls-'))
  const f = (n: string): string => join(dir, n)
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }) }
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=weft-test-ca',
    '-keyout', f('ca.key'), '-out', f('ca.crt'))
  const leaf = (name: string, cn: string, ext: string): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`))
    writeFileSync(f(`${name}.ext`), ext)
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`))
  }
  const ips = opts.ips ?? ['127.0.0.1']
  leaf('server', ips[0]!, `subjectAltName=${ips.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`)
  leaf('client', 'weft-client', 'extendedKeyUsage=clientAuth\n')
  return {
    dir,
    caFile: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key')
  }
}
