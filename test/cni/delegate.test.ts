// The delegate config is flannel's, to the byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { delegateConf, parseConf } from '../../src/cni/delegate'
import { CniError } from '../../src/cni/errors'
import { parseSubnetEnv } from '../../src/subnet/env'

const ENV = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')

test('the kube-flannel example renders exactly as flannel\'s plugin renders it', () => {
  const conf = parseConf('{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}')
  assert.equal(JSON.stringify(delegateConf(conf, ENV)),
    '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}')
})

test('fields set in the delegate win over the derived ones; ipam routes given are kept before the network route', () => {
  const conf = parseConf('{"cniVersion":"1.0.0","name":"n","type":"weft","delegate":{"mtu":1400,"ipMasq":true,"isGateway":false},"ipam":{"dataDir":"/tmp/x","routes":[{"dst":"192.0.2.0/24"}]}}')
  const d = delegateConf(conf, ENV)
  assert.equal(d.mtu, 1400)
  assert.equal(d.ipMasq, true)
  assert.equal(d.isGateway, false)
  assert.deepEqual((d.ipam as Record<string, unknown>).routes, [{ dst: '192.0.2.0/24' }, { dst: '10.244.0.0/16' }])
  assert.equal((d.ipam as Record<string, unknown>).dataDir, '/tmp/x')
})

test('name or ipam inside delegate, a missing cniVersion, or text that is not JSON are refused with the spec\'s codes', () => {
  const code = (text: string): number => { try { parseConf(text); return 0 } catch (e) { return (e as CniError).code } }
  assert.equal(code('{"cniVersion":"1.0.0","name":"n","delegate":{"name":"x"}}'), 7)
  assert.equal(code('{"cniVersion":"1.0.0","name":"n","delegate":{"ipam":{}}}'), 7)
  assert.equal(code('{"name":"n"}'), 7)
  assert.equal(code('{"cniVersion":'), 6)
})
