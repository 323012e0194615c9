// The command runner on its own: output, exit codes, missing programs,
// timeouts and stdin. Runs only harmless programs (echo, cat, sh, sleep), so
// it needs no root and touches no network namespace.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { WeftError } from '../../src/errors'
import { KernelCommandError, commandLine, inNetns, probe, run } from '../../src/kernel/exec'

test('run resolves with stdout', async () => {
  assert.equal(await run(['echo', 'hi']), 'hi\n')
})

test('run feeds input to stdin', async () => {
  assert.equal(await run(['cat'], { input: 'abc\n' }), 'abc\n')
})

test('a non-zero exit is EKERNEL with the command line and stderr', async () => {
  await assert.rejects(run(['sh', '-c', 'echo oops >&2; exit 3']), (err: unknown) => {
    assert.ok(err instanceof WeftError)
    assert.ok(err instanceof KernelCommandError)
    assert.equal(err.code, 'EKERNEL')
    assert.equal(err.exitCode, 3)
    assert.equal(err.notFound, false)
    assert.equal(err.message, "sh -c 'echo oops >&2; exit 3': oops")
    return true
  })
})

test('no stderr: the message gives the exit status', async () => {
  await assert.rejects(run(['false']), { code: 'EKERNEL', message: 'false: exit status 1' })
})

test('probe returns the exit code instead of throwing', async () => {
  assert.deepEqual(await probe(['sh', '-c', 'echo out; echo err >&2; exit 1']), { code: 1, stdout: 'out\n', stderr: 'err\n' })
  assert.equal((await probe(['true'])).code, 0)
})

test('a missing program is notFound, from run and probe alike', async () => {
  for (const f of [run, probe]) {
    await assert.rejects(f(['weft-no-such-program', '-x']), (err: unknown) => {
      assert.ok(err instanceof KernelCommandError)
      assert.equal(err.notFound, true)
      assert.equal(err.message, 'weft-no-such-program -x: command not found')
      return true
    })
  }
})

test('a command over its timeout is killed and reported', async () => {
  const t0 = Date.now()
  await assert.rejects(run(['sleep', '10'], { timeoutMs: 200 }), { code: 'EKERNEL', message: 'sleep 10: timed out after 200 ms' })
  assert.ok(Date.now() - t0 < 5000)
})

test('inNetns prefixes ip netns exec only when a namespace is given', () => {
  assert.deepEqual(inNetns(['iptables', '-S']), ['iptables', '-S'])
  assert.deepEqual(inNetns(['iptables', '-S'], 'ns1'), ['ip', 'netns', 'exec', 'ns1', 'iptables', '-S'])
})

test('commandLine quotes only what needs it', () => {
  assert.equal(commandLine(['iptables', '-m', 'comment', '--comment', 'flanneld masq', '!', '-s', '10.0.0.0/8']),
    "iptables -m comment --comment 'flanneld masq' '!' -s 10.0.0.0/8")
})

test('a command starts with every signal at its default, though Node ignores SIGPIPE', async () => {
  // with SIGPIPE ignored, yes would complain of a broken pipe on stderr instead of ending quietly
  const r = await probe(['sh', '-c', 'yes | head -n 1'])
  assert.deepEqual(r, { code: 0, stdout: 'y\n', stderr: '' })
})

test('a command ended by a signal is reported with its name', async () => {
  await assert.rejects(probe(['sh', '-c', 'kill -TERM $$']), /killed by SIGTERM/)
})

test('fifty commands in a row are each reaped: no zombie is left behind', async () => {
  for (let i = 0; i < 50; i++) assert.equal((await probe(['true'])).code, 0)
  const zombies = (await run(['ps', '-o', 'stat=', '--ppid', String(process.pid)])).split('\n').filter((s) => s.startsWith('Z'))
  assert.deepEqual(zombies, [])
})
