// The CNI plugin trusts nothing it is given: hostile network configs,
// environments, stdin and saved files, in the spirit of the CNI spec's own
// validation (libcni's FindInPath, skel's checks of the container ID and
// interface name). Each refusal is the spec's error object and runs nothing:
// a marker program planted where the hostile value points would leave a file
// behind if it ran. No root needed: the delegate is a fake in a temp CNI_PATH.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { WeftError } from '../../src/errors'
import { install } from '../../src/cni/install'
import { Sandbox, savedConf, specError } from './sandbox'

function sandbox (t: TestContext): Sandbox {
  const s = new Sandbox()
  t.after(() => s.remove())
  return s
}

/** Delegate types that name a file outside CNI_PATH (or no file), each with a marker planted where it points. */
function hostileTypes (s: Sandbox): Array<{ type: string, label: string }> {
  const outside = path.join(s.root, 'outside', 'x')
  s.marker(outside, 'outside')
  s.marker(path.join(s.bin, 'sub', 'x'), 'sub')
  // as many ".." as it takes to reach / from CNI_PATH, then down to the marker: "../../tmp/x"
  const deep = '../'.repeat(s.bin.split('/').length) + outside.slice(1)
  return [
    { type: path.relative(s.bin, outside), label: 'relative' },
    { type: deep, label: 'relative to /' },
    { type: outside, label: 'absolute' },
    { type: 'sub/x', label: 'a / inside' },
    { type: '..', label: '..' },
    { type: '.', label: '.' },
    { type: '', label: 'empty' },
    { type: 'bri\u0000dge', label: 'NUL' }
  ]
}

test('a delegate or ipam type that is a path, "..", "." or empty is refused for every command, with the spec\'s error, and nothing runs', (t) => {
  const s = sandbox(t)
  for (const { type, label } of hostileTypes(s)) {
    for (const field of ['delegate', 'ipam']) {
      for (const command of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']) {
        const conf = s.conf({ [field]: { type }, 'cni.dev/valid-attachments': [] })
        const e = specError(s.call(command, conf))
        assert.equal(e.code, 7, `${label} ${field} ${command}: ${e.msg}`)
        assert.match(e.msg, new RegExp(`^${field}\\.type: (invalid plugin name: |no plugin name provided)`), label)
      }
    }
  }
  // a type that is not a string at all
  for (const type of [5, null, ['bridge'], { x: 1 }]) assert.equal(specError(s.call('ADD', s.conf({ delegate: { type } }))).code, 7)
  assert.deepEqual(s.ran(), [])
  assert.deepEqual(s.delegateCalls(), [])
  assert.equal(fs.existsSync(s.data), false, 'nothing saved')
})

test('through bin/weft, as a runtime runs it: the libcni rule\'s own message, and the marker at "../outside/x" never runs', (t) => {
  const s = sandbox(t)
  const [relative, , absolute] = hostileTypes(s)
  for (const { type } of [relative, absolute]) {
    const e = specError(s.exec('ADD', s.conf({ delegate: { type } })))
    assert.equal(e.code, 7)
    assert.equal(e.msg, `delegate.type: invalid plugin name: ${JSON.stringify(type)}`)
  }
  assert.equal(specError(s.exec('ADD', s.conf({ delegate: { type: '' } }))).msg, 'delegate.type: no plugin name provided')
  assert.deepEqual(s.ran(), [])
})

test('a saved config naming a path is not run by DEL, CHECK or GC; the file is kept (new layout) or left alone (old layout)', (t) => {
  const s = sandbox(t)
  for (const { type, label } of hostileTypes(s)) {
    const current = s.plant('net-a:c1:eth0', savedConf('net-a', type))
    const old = s.plant('c2', savedConf('net-a', type))
    const del = specError(s.call('DEL', s.conf()))
    assert.equal(del.code, 7, label)
    assert.match(del.msg, /names a delegate weft will not run/)
    assert.equal(specError(s.call('CHECK', s.conf())).code, 7)
    const delOld = s.call('DEL', s.conf(), { CNI_CONTAINERID: 'c2' })
    assert.equal(delOld.code, 0, 'an old-layout file weft cannot show is its own is not acted on')
    assert.match(delOld.warnings.join('\n'), /leaving .*c2 alone/)
    const gc = s.call('GC', s.conf({ 'cni.dev/valid-attachments': [] }))
    assert.equal(gc.code, 0, JSON.stringify(gc.out))
    assert.ok(fs.existsSync(current) && fs.existsSync(old), label)
  }
  assert.deepEqual(s.ran(), [])
  assert.deepEqual(s.delegateCalls(), [])
})

test('CNI_PATH entries must be absolute: a relative one is refused, whatever the working directory holds', (t) => {
  const s = sandbox(t)
  s.marker(path.join(s.root, 'rel', 'bridge'), 'relative-cni-path')
  for (const cniPath of ['rel', `rel:${s.bin}`, `${s.bin}:rel`, './rel', '../' + path.basename(s.root) + '/rel']) {
    const e = specError(s.exec('ADD', s.conf(), { CNI_PATH: cniPath }, { cwd: s.root }))
    assert.equal(e.code, 4, cniPath)
    assert.match(e.msg, /^CNI_PATH entry ".*" is not an absolute path$/)
  }
  for (const command of ['DEL', 'CHECK', 'GC']) assert.equal(specError(s.call(command, s.conf({ 'cni.dev/valid-attachments': [] }), { CNI_PATH: 'rel' })).code, 4)
  assert.equal(specError(s.call('ADD', s.conf(), { CNI_PATH: ':::' })).code, 4)
  assert.deepEqual(s.ran(), [])
  // empty entries are skipped, as libcni skips them
  assert.equal(s.call('ADD', s.conf(), { CNI_PATH: `::${s.bin}:` }).code, 0)
})

test('stdin is bounded at 1 MiB: a larger config is refused, /dev/zero is not read to the end, a config at the limit is fine', (t) => {
  const s = sandbox(t)
  const base = JSON.stringify(s.conf())
  const atLimit = base + ' '.repeat((1 << 20) - base.length)
  assert.equal(s.exec('STATUS', atLimit).code, 0)
  for (const c of [s.exec('ADD', atLimit + ' '), s.call('ADD', atLimit + ' ')]) {
    const e = specError(c)
    assert.equal(e.code, 7)
    assert.equal(e.msg, 'the network configuration on stdin is larger than 1048576 bytes')
  }
  const zero = fs.openSync('/dev/zero', 'r')
  t.after(() => fs.closeSync(zero))
  const started = Date.now()
  const e = specError(s.exec('ADD', '', {}, { stdinFd: zero }))
  assert.equal(e.code, 7)
  assert.match(e.msg, /larger than 1048576 bytes/)
  assert.ok(Date.now() - started < 20_000)
  assert.deepEqual(s.delegateCalls(), [])
})

test('container IDs as the spec defines them, checked up front for ADD, DEL and CHECK; nothing is written for a bad one', (t) => {
  const s = sandbox(t)
  s.marker(path.join(s.root, 'escape'), 'unused')
  const bad = ['../escape', 'a/b', '.hidden', '-x', '_x', 'x y', 'x\ty', 'x:y', 'ä', 'a\\b', '..', '.']
  for (const command of ['ADD', 'DEL', 'CHECK']) {
    for (const id of bad) {
      const e = specError(s.call(command, s.conf(), { CNI_CONTAINERID: id }))
      assert.equal(e.code, 4, `${command} ${JSON.stringify(id)}`)
      assert.equal(e.msg, 'invalid characters in containerID')
    }
    assert.match(specError(s.call(command, s.conf(), { CNI_CONTAINERID: '' })).msg, /CNI_CONTAINERID is not set/)
    assert.match(specError(s.call(command, s.conf(), { CNI_CONTAINERID: undefined })).msg, /CNI_CONTAINERID is not set/)
  }
  assert.equal(fs.existsSync(s.data), false)
  assert.equal(fs.readFileSync(path.join(s.root, 'escape'), 'utf8').startsWith('#!/bin/sh'), true, 'not overwritten')
  assert.deepEqual(s.delegateCalls(), [])
  assert.equal(s.call('ADD', s.conf(), { CNI_CONTAINERID: '0a_b.c-D' }).code, 0)
})

test('interface names as libcni and the kernel take them: at most 15 bytes, not . or .., no /, : or whitespace', (t) => {
  const s = sandbox(t)
  const bad: Array<[string, RegExp]> = [
    ['.', /is \. or \.\./], ['..', /is \. or \.\./],
    ['a/b', /contains \/ or :/], ['a:b', /contains \/ or :/], ['a b', /contains \/ or :/], ['a\tb', /contains/], ['a\nb', /contains/], ['a\u00a0b', /contains/],
    ['abcdefghijklmnop', /too long/], ['\u00e9'.repeat(8), /too long/]
  ]
  for (const command of ['ADD', 'DEL', 'CHECK']) {
    for (const [ifname, why] of bad) {
      const e = specError(s.call(command, s.conf(), { CNI_IFNAME: ifname }))
      assert.equal(e.code, 4, `${command} ${JSON.stringify(ifname)}`)
      assert.match(e.msg, why, JSON.stringify(ifname))
    }
    assert.match(specError(s.call(command, s.conf(), { CNI_IFNAME: '' })).msg, /CNI_IFNAME is not set/)
  }
  assert.equal(fs.existsSync(s.data), false)
  assert.equal(s.call('ADD', s.conf(), { CNI_IFNAME: 'abcdefghijklmno' }).code, 0, '15 bytes is fine')
  assert.equal(s.call('ADD', s.conf(), { CNI_IFNAME: 'net-1.2_x@y' }).code, 0)
})

test('CNI_NETNS must be an absolute path (ADD and CHECK need one; DEL may come without)', (t) => {
  const s = sandbox(t)
  for (const command of ['ADD', 'CHECK', 'DEL']) {
    for (const netns of ['netns/x', './x', 'x']) {
      const e = specError(s.call(command, s.conf(), { CNI_NETNS: netns }))
      assert.equal(e.code, 4)
      assert.match(e.msg, /^CNI_NETNS ".*" is not an absolute path$/)
    }
  }
  assert.match(specError(s.call('ADD', s.conf(), { CNI_NETNS: undefined })).msg, /CNI_NETNS is not set/)
  assert.equal(s.call('DEL', s.conf(), { CNI_NETNS: '' }).code, 0)
})

test('the config\'s dataDir and subnetFile must be absolute paths, and the network name one path component', (t) => {
  const s = sandbox(t)
  for (const command of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']) {
    for (const field of ['dataDir', 'subnetFile']) {
      for (const v of ['data', './data', '', 5, null, ['/tmp']]) {
        const e = specError(s.call(command, s.conf({ [field]: v, 'cni.dev/valid-attachments': [] })))
        assert.equal(e.code, 7)
        assert.match(e.msg, new RegExp(`^${field} must be an absolute path`))
      }
    }
    for (const name of ['../x', 'a/b', 'a:b', '.a', 'a b']) {
      const e = specError(s.call(command, s.conf({ name, 'cni.dev/valid-attachments': [] })))
      assert.equal(e.code, 7)
      assert.equal(e.msg, 'invalid characters found in network name')
    }
  }
  // subnetFile names something that is not a file: refused, not read
  assert.match(specError(s.call('ADD', s.conf({ subnetFile: '/dev/zero' }))).details ?? '', /not a regular file/)
  assert.equal(fs.existsSync(path.join(s.root, 'data')), false)
  assert.deepEqual(s.delegateCalls(), [])
})

test('two weft networks in one pod sharing a dataDir keep their own saved configs; DEL of one leaves the other', (t) => {
  const s = sandbox(t)
  assert.equal(s.call('ADD', s.conf({ name: 'net-a' }), { CNI_IFNAME: 'eth0' }).code, 0)
  assert.equal(s.call('ADD', s.conf({ name: 'net-b' }), { CNI_IFNAME: 'net1' }).code, 0)
  assert.deepEqual(fs.readdirSync(s.data).sort(), ['net-a:c1:eth0', 'net-b:c1:net1'])
  for (const f of fs.readdirSync(s.data)) assert.equal(fs.statSync(path.join(s.data, f)).mode & 0o777, 0o600)
  assert.equal(fs.statSync(s.data).mode & 0o777, 0o700)
  assert.equal(s.call('DEL', s.conf({ name: 'net-a' }), { CNI_IFNAME: 'eth0' }).code, 0)
  assert.deepEqual(fs.readdirSync(s.data), ['net-b:c1:net1'])
  const dels = s.delegateCalls().filter((c) => c.command === 'DEL')
  assert.deepEqual(dels.map((c) => [c.containerId, c.ifname, c.conf.name]), [['c1', 'eth0', 'net-a']])
  // DEL of net-a again, or of an interface it never had: nothing known, success, nothing run
  assert.equal(s.call('DEL', s.conf({ name: 'net-a' }), { CNI_IFNAME: 'eth0' }).code, 0)
  assert.equal(s.call('DEL', s.conf({ name: 'net-a' }), { CNI_IFNAME: 'net1' }).code, 0)
  assert.equal(s.delegateCalls().filter((c) => c.command === 'DEL').length, 1)
  assert.equal(specError(s.call('CHECK', s.conf({ name: 'net-a' }), { CNI_IFNAME: 'eth0' })).code, 3)
  assert.equal(s.call('CHECK', s.conf({ name: 'net-b' }), { CNI_IFNAME: 'net1' }).code, 0)
})

test('old-layout files (dataDir/<containerID>, before the upgrade) are still deleted and checked, if they are this network\'s', (t) => {
  const s = sandbox(t)
  const mine = s.plant('c7', savedConf('net-a'))
  const theirs = s.plant('c8', savedConf('net-b'))
  assert.equal(s.call('CHECK', s.conf(), { CNI_CONTAINERID: 'c7' }).code, 0)
  assert.equal(specError(s.call('CHECK', s.conf(), { CNI_CONTAINERID: 'c8' })).code, 3)
  assert.equal(s.call('DEL', s.conf(), { CNI_CONTAINERID: 'c7' }).code, 0)
  assert.equal(s.call('DEL', s.conf(), { CNI_CONTAINERID: 'c8' }).code, 0)
  assert.equal(fs.existsSync(mine), false)
  assert.equal(fs.existsSync(theirs), true, 'another network\'s file is left alone')
  assert.deepEqual(s.delegateCalls().map((c) => [c.command, c.containerId, c.ifname, c.conf.name]), [['DEL', 'c7', 'eth0', 'net-a']])
})

test('GC of network A releases only A\'s stale attachments: B\'s, A\'s valid ones (by container and interface) and unrelated files are left alone', (t) => {
  const s = sandbox(t)
  const add = (name: string, id: string, ifname: string): void => assert.equal(s.call('ADD', s.conf({ name }), { CNI_CONTAINERID: id, CNI_IFNAME: ifname }).code, 0)
  add('net-a', 'c1', 'eth0')
  add('net-a', 'c1', 'net1')
  add('net-a', 'c2', 'eth0')
  add('net-b', 'c2', 'net1')
  add('net-b', 'c3', 'eth0')
  add('net-a', 'fail1', 'eth0')
  s.plant('c7', savedConf('net-a')) // A's, from before the upgrade: stale
  s.plant('c8', savedConf('net-b')) // B's, from before the upgrade
  // things that are not A's attachments, some dressed up as them
  fs.writeFileSync(path.join(s.data, 'notes.txt'), 'keep me')
  fs.writeFileSync(path.join(s.data, 'c9'), 'not JSON', { mode: 0o600 })
  fs.writeFileSync(path.join(s.data, 'c10'), JSON.stringify({ name: 'net-a', type: 'bridge' }), { mode: 0o600 })
  const target = path.join(s.root, 'precious')
  fs.writeFileSync(target, JSON.stringify(savedConf('net-a')), { mode: 0o600 })
  fs.symlinkSync(target, path.join(s.data, 'net-a:c4:eth0'))
  fs.writeFileSync(path.join(s.data, 'net-a:c5:eth0'), JSON.stringify(savedConf('net-a')), { mode: 0o644 })
  fs.chmodSync(path.join(s.data, 'net-a:c5:eth0'), 0o644)
  fs.mkdirSync(path.join(s.data, 'net-a:c6:eth0'))
  fs.writeFileSync(path.join(s.data, 'net-a:c11:eth0'), JSON.stringify(savedConf('net-b')), { mode: 0o600 })
  const before = new Set(fs.readdirSync(s.data))
  const adds = s.delegateCalls().length

  const gc = s.call('GC', s.conf({ name: 'net-a', 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }, { containerID: 'c3', ifname: 'eth0' }] }))
  // fail1's delegate refuses its DEL: reported, its file kept for the next GC
  const e = specError(gc)
  assert.equal(e.code, 11)
  assert.match(e.msg, /^GC could not release 1 stale attachment; its file is kept/)
  const gone = [...before].filter((f) => !fs.existsSync(path.join(s.data, f))).sort()
  assert.deepEqual(gone, ['c7', 'net-a:c1:net1', 'net-a:c2:eth0'])
  assert.deepEqual(s.delegateCalls().slice(adds).map((c) => [c.command, c.containerId, c.ifname, c.conf.name]).sort(), [
    ['DEL', 'c1', 'net1', 'net-a'], ['DEL', 'c2', 'eth0', 'net-a'], ['DEL', 'c7', 'eth0', 'net-a'], ['DEL', 'fail1', 'eth0', 'net-a']
  ])
  assert.equal(fs.readFileSync(target, 'utf8'), JSON.stringify(savedConf('net-a')), 'a symlink\'s target is never touched')
  assert.match(gc.warnings.join('\n'), /net-a:c4:eth0 alone: it is a symbolic link/)
  assert.match(gc.warnings.join('\n'), /net-a:c5:eth0 alone: it has mode 644/)
  assert.deepEqual(s.ran(), [])
})

test('GC with dataDir pointed at a directory of other files (as "dataDir": "/etc" would) deletes none of them', (t) => {
  const s = sandbox(t)
  const etc = path.join(s.root, 'etc')
  fs.mkdirSync(etc)
  const files: Record<string, string> = { passwd: 'root:x:0:0::/root:/bin/sh\n', hosts: '127.0.0.1 localhost\n', c1: '{}', 'resolv.conf': 'nameserver 1.1.1.1\n', 'net-a': JSON.stringify({ name: 'net-a' }), 'machine-id': '0123\n' }
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, f), text, { mode: 0o600 })
  assert.equal(s.call('GC', s.conf({ dataDir: etc, 'cni.dev/valid-attachments': [] })).code, 0)
  assert.equal(s.call('GC', s.conf({ dataDir: etc, 'cni.dev/valid-attachments': null })).code, 0)
  for (const [f, text] of Object.entries(files)) assert.equal(fs.readFileSync(path.join(etc, f), 'utf8'), text)
  assert.deepEqual(s.delegateCalls(), [])
})

test('GC without cni.dev/valid-attachments, or with a malformed list, is refused and deletes nothing; the old key cni.dev/attachments is read', (t) => {
  const s = sandbox(t)
  assert.equal(s.call('ADD', s.conf()).code, 0)
  for (const extra of [{}, { 'cni.dev/valid-attachments': {} }, { 'cni.dev/valid-attachments': [5] }, { 'cni.dev/valid-attachments': [{ containerID: 1 }] }, { 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 2 }] }]) {
    const e = specError(s.call('GC', s.conf(extra)))
    assert.equal(e.code, 7, JSON.stringify(extra))
  }
  assert.deepEqual(fs.readdirSync(s.data), ['net-a:c1:eth0'])
  assert.equal(s.call('GC', s.conf({ 'cni.dev/attachments': [{ containerID: 'c1', ifname: 'eth0' }] })).code, 0)
  assert.deepEqual(fs.readdirSync(s.data), ['net-a:c1:eth0'])
  // an entry without ifname keeps every interface of that container
  assert.equal(s.call('GC', s.conf({ 'cni.dev/valid-attachments': [{ containerID: 'c1' }] })).code, 0)
  assert.deepEqual(fs.readdirSync(s.data), ['net-a:c1:eth0'])
  assert.equal(s.call('GC', s.conf({ 'cni.dev/valid-attachments': [] })).code, 0)
  assert.deepEqual(fs.readdirSync(s.data), [])
})

test('an ADD whose delegate prints something other than a result object is undone and reported', (t) => {
  const s = sandbox(t)
  for (const out of ['null', '[1]', '5', 'not json']) {
    const e = specError(s.call('ADD', s.conf(), { FAKE_ADD: out }))
    assert.equal(e.code, 6, out)
    assert.deepEqual(fs.readdirSync(s.data), [], 'no saved config')
  }
  assert.deepEqual(s.delegateCalls().map((c) => c.command), Array(4).fill(['ADD', 'DEL']).flat())
})

test('cniVersion 1.1.0: the delegate VERSION probe goes through the same lookup, and the ADD is lowered to what it speaks', (t) => {
  const s = sandbox(t)
  const r = s.call('ADD', s.conf({ cniVersion: '1.1.0' }))
  assert.equal(r.code, 0, JSON.stringify(r.out))
  assert.equal(r.out?.cniVersion, '1.1.0')
  const calls = s.delegateCalls()
  assert.deepEqual(calls.map((c) => c.command), ['VERSION', 'ADD'])
  assert.equal(calls[1].conf.cniVersion, '1.0.0')
})

test('`weft cni install` refuses a --name that is a path, and a network name or subnet file the plugin would refuse; nothing is written', (t) => {
  const s = sandbox(t)
  const o = { binDir: path.join(s.root, 'opt'), confDir: path.join(s.root, 'net.d'), name: 'weft', network: 'cbr0', cniVersion: '1.0.0', subnetFile: '/run/flannel/subnet.env' }
  for (const bad of [{ name: '../escape' }, { name: '' }, { name: '..' }, { network: 'a/b' }, { network: '' }, { subnetFile: 'subnet.env' }]) {
    assert.throws(() => install({ ...o, ...bad }, '/nonexistent/main.js'), (err: unknown) => err instanceof WeftError && err.code === 'EUSAGE', JSON.stringify(bad))
  }
  assert.deepEqual(fs.readdirSync(s.root).filter((f) => ['opt', 'net.d', 'escape'].includes(f)), [])
})
