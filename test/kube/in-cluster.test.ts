// The DaemonSet's way in: no kubeconfig, only the pod's service account
// (KUBERNETES_SERVICE_HOST/PORT, the token and CA under
// /var/run/secrets/kubernetes.io/serviceaccount, mounted here in a private
// mount namespace, as a pod has them) and POD_NAME/POD_NAMESPACE; and the
// annotations an operator sets on a node behind NAT: node-public-ip (the
// node's address, over --public-ip) and public-ip-overwrite (the address
// peers are told to use).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { BIN } from '../../lab/daemons'
import { fetchStatus } from '../../src/daemon/control'
import { API_IP, flannelAnnotations, kubeCluster } from './cluster'

const skip = netnsSkipReason() ?? toolSkipReason('unshare', 'openssl')
const SA = '/var/run/secrets/kubernetes.io/serviceaccount'

test('in a pod: the service account and POD_NAME find the API server and the node; node-public-ip and public-ip-overwrite are honoured as flanneld honours them', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kube-pod' }, async (topo) => {
    const [h1] = topo.hosts
    const k = await kubeCluster(t, topo)
    await k.api.addNode({
      name: h1.name,
      podCIDR: '10.244.1.0/24',
      annotations: {
        'flannel.alpha.coreos.com/node-public-ip': '198.18.0.1',
        'flannel.alpha.coreos.com/public-ip-overwrite': '198.18.7.7'
      }
    })
    await k.api.addPod('kube-flannel', 'kube-weft-ds-abcde', h1.name)
    // the service account's files, as the kubelet projects them into the pod
    const sa = `${k.dir}/sa`
    fs.mkdirSync(sa)
    fs.writeFileSync(`${sa}/token`, k.api.token)
    fs.copyFileSync(k.api.caFile, `${sa}/ca.crt`)
    fs.writeFileSync(`${sa}/namespace`, 'kube-flannel')
    const state = `${k.dir}/h1`
    const weft = [process.execPath, BIN, 'run', '--kube-subnet-mgr', '--net-config-path', `${k.dir}/net-conf.json`, '--iface', 'eth0', '--public-ip', '198.18.0.99', '--subnet-file', `${state}/subnet.env`, '--state-dir', state]
    const script = `mount -t tmpfs tmpfs /run && mkdir -p ${SA} && mount --bind ${sa} ${SA} && exec "$@"`
    const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_SERVICE_HOST: API_IP, KUBERNETES_SERVICE_PORT: '6443', POD_NAME: 'kube-weft-ds-abcde', POD_NAMESPACE: 'kube-flannel' }
    delete env.NODE_NAME
    const child = topo.spawn(h1, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...weft], { env })
    t.after(async () => { await child.stop() })
    await child.waitForLine(/"msg":"running"/, 20_000)

    const a = flannelAnnotations(await k.api.getNode(h1.name))
    assert.equal(a['public-ip'], '198.18.7.7', 'peers are told the overwrite address')
    assert.equal(a['kube-subnet-manager'], 'true')
    const status = await fetchStatus(state) as { lease: { subnet: string, publicIP: string } }
    assert.equal(status.lease.subnet, '10.244.1.0/24')
    assert.equal(status.lease.publicIP, '198.18.0.1', 'node-public-ip wins over --public-ip')
    await waitFor(async () => ((await k.api.getNode(h1.name))?.status?.conditions ?? []).some((c: { type: string, status: string }) => c.type === 'NetworkUnavailable' && c.status === 'False'), { what: 'NetworkUnavailable False', timeoutMs: 10_000 })
    assert.ok((await k.api.calls()).some((c) => c.verb === 'get' && c.resource === 'pods' && c.code === 200), 'the node was found from the pod')
  })
})
