// lab/kube-api's patch code on its own: RFC 7386 merge patch (the RFC's
// own examples), the strategic merge patch with Node's list strategies and
// directives, RFC 6902 JSON patch (the RFC's examples and failures), the
// selectors and the Age column's human durations.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { jsonPatch, PatchApplyError, PatchDecodeError } from '../../lab/kube-api/json-patch'
import type { Json, JsonObject } from '../../lab/kube-api/json'
import { mergePatch, NODE_SCHEMA, PatchError, strategicMergePatch } from '../../lab/kube-api/patch'
import { parseFieldSelector, parseLabelSelector } from '../../lab/kube-api/select'
import { humanDuration } from '../../lab/kube-api/table'

test('merge patch: RFC 7386 appendix A', () => {
  const cases: Array<[Json, Json, Json]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }]
  ]
  for (const [target, patch, want] of cases) assert.deepEqual(mergePatch(target, patch), want, JSON.stringify([target, patch]))
})

const node = (): JsonObject => ({
  metadata: { name: 'n', annotations: { a: '1', b: '2' }, finalizers: ['x'] },
  spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24'], taints: [{ key: 'k1', effect: 'NoSchedule' }] },
  status: {
    conditions: [{ type: 'Ready', status: 'False', reason: 'a' }, { type: 'MemoryPressure', status: 'False' }],
    addresses: [{ type: 'InternalIP', address: '10.1.1.1' }, { type: 'Hostname', address: 'n' }],
    images: [{ names: ['i1'] }]
  }
})

test('strategic merge patch: Node\'s merge keys, sets and atomic lists', () => {
  const smp = (patch: Json): JsonObject => strategicMergePatch(node(), patch, NODE_SCHEMA)
  // conditions merge by type: one changed in place, one added at the end
  assert.deepEqual((smp({ status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'NetworkUnavailable', status: 'False' }] } }).status as JsonObject).conditions, [
    { type: 'Ready', status: 'True', reason: 'a' }, { type: 'MemoryPressure', status: 'False' }, { type: 'NetworkUnavailable', status: 'False' }
  ])
  // a null inside a merged item deletes that field only
  assert.deepEqual((smp({ status: { conditions: [{ type: 'Ready', reason: null }] } }).status as JsonObject).conditions, [
    { type: 'Ready', status: 'False' }, { type: 'MemoryPressure', status: 'False' }
  ])
  // $patch: delete removes by key; $patch: replace replaces the whole list
  assert.deepEqual((smp({ status: { addresses: [{ type: 'Hostname', $patch: 'delete' }] } }).status as JsonObject).addresses, [{ type: 'InternalIP', address: '10.1.1.1' }])
  assert.deepEqual((smp({ status: { addresses: [{ $patch: 'replace' }, { type: 'ExternalIP', address: '1.2.3.4' }] } }).status as JsonObject).addresses, [{ type: 'ExternalIP', address: '1.2.3.4' }])
  // lists without a strategy are replaced: taints, images
  assert.deepEqual((smp({ spec: { taints: [{ key: 'k2', effect: 'NoExecute' }] } }).spec as JsonObject).taints, [{ key: 'k2', effect: 'NoExecute' }])
  assert.deepEqual((smp({ status: { images: [] } }).status as JsonObject).images, [])
  // lists of primitives with patchStrategy merge are sets; $deleteFromPrimitiveList takes out
  assert.deepEqual((smp({ spec: { podCIDRs: ['10.0.1.0/24', '10.0.2.0/24'] } }).spec as JsonObject).podCIDRs, ['10.0.1.0/24', '10.0.2.0/24'])
  assert.deepEqual((smp({ metadata: { '$deleteFromPrimitiveList/finalizers': ['x'], finalizers: ['y'] } }).metadata as JsonObject).finalizers, ['y'])
  // maps: null deletes, $patch: replace replaces, $retainKeys keeps only the listed, $setElementOrder is taken and dropped
  assert.deepEqual((smp({ metadata: { annotations: { a: null, c: '3' } } }).metadata as JsonObject).annotations, { b: '2', c: '3' })
  assert.deepEqual((smp({ metadata: { annotations: { $patch: 'replace', z: '9' } } }).metadata as JsonObject).annotations, { z: '9' })
  assert.deepEqual((smp({ metadata: { annotations: { $retainKeys: ['b'] } } }).metadata as JsonObject).annotations, { b: '2' })
  assert.deepEqual((smp({ metadata: { annotations: { $patch: 'delete' } } }).metadata as JsonObject).annotations, undefined)
  assert.deepEqual(smp({ status: { '$setElementOrder/conditions': [{ type: 'MemoryPressure' }] } }).status, node().status)
  // malformed: a merge-key list item without its key, a scalar where maps go, an unknown directive
  assert.throws(() => smp({ status: { conditions: [{ status: 'True' }] } }), PatchError)
  assert.throws(() => smp({ status: { conditions: ['Ready'] } }), PatchError)
  assert.throws(() => smp({ spec: { $patch: 'explode' } }), PatchError)
  assert.throws(() => smp(['not', 'a', 'map']), PatchError)
  // the original is never changed
  const orig = node()
  strategicMergePatch(orig, { status: { conditions: [{ type: 'Ready', status: 'True' }] }, metadata: { annotations: { a: null } } }, NODE_SCHEMA)
  assert.deepEqual(orig, node())
})

test('JSON patch: RFC 6902 appendix A, failures and escapes', () => {
  assert.deepEqual(jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }]), { foo: 'bar', baz: 'qux' })
  assert.deepEqual(jsonPatch({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }]), { foo: ['bar', 'qux', 'baz'] })
  assert.deepEqual(jsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }]), { foo: 'bar' })
  assert.deepEqual(jsonPatch({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }]), { foo: ['bar', 'baz'] })
  assert.deepEqual(jsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }]), { baz: 'boo', foo: 'bar' })
  assert.deepEqual(jsonPatch({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }]),
    { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } })
  assert.deepEqual(jsonPatch({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }]), { foo: ['all', 'cows', 'eat', 'grass'] })
  assert.deepEqual(jsonPatch({ baz: 'qux', foo: ['a', 2, 'c'] }, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }]), { baz: 'qux', foo: ['a', 2, 'c'] })
  assert.throws(() => jsonPatch({ baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }]), PatchApplyError)
  assert.deepEqual(jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }]), { foo: 'bar', child: { grandchild: {} } })
  assert.throws(() => jsonPatch({ foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }]), PatchApplyError)
  assert.deepEqual(jsonPatch({ '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }, { op: 'copy', from: '/~1', path: '/x' }]), { '/': 9, '~1': 10, x: 9 })
  assert.deepEqual(jsonPatch({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }]), { foo: ['bar', ['abc', 'def']] })
  // the whole patch or nothing: a later failure leaves the input as it was
  const doc = { a: 1 }
  assert.throws(() => jsonPatch(doc, [{ op: 'replace', path: '/a', value: 2 }, { op: 'remove', path: '/nope' }]), PatchApplyError)
  assert.deepEqual(doc, { a: 1 })
  assert.throws(() => jsonPatch({ a: [1] }, [{ op: 'add', path: '/a/2', value: 0 }]), PatchApplyError)
  assert.throws(() => jsonPatch({ a: [1] }, [{ op: 'add', path: '/a/01', value: 0 }]), PatchApplyError)
  assert.throws(() => jsonPatch({ a: {} }, [{ op: 'move', from: '/a', path: '/a/b' }]), PatchApplyError)
  assert.throws(() => jsonPatch({}, { op: 'add' }), PatchDecodeError)
  assert.throws(() => jsonPatch({}, [{ op: 'frob', path: '/a' }]), PatchDecodeError)
  assert.throws(() => jsonPatch({}, [{ op: 'copy', path: '/a' }]), PatchDecodeError)
  assert.throws(() => jsonPatch({}, [{ op: 'add', path: 'a', value: 1 }]), PatchApplyError)
})

test('label and field selectors as the server parses them', () => {
  const n = (labels: Record<string, string>): JsonObject => ({ metadata: { name: 'n1', labels }, spec: {} })
  const sel = (s: string): boolean[] => [n({ a: '1' }), n({ a: '2', b: 'x' }), n({})].map((o) => parseLabelSelector(s)(o))
  assert.deepEqual(sel('a=1'), [true, false, false])
  assert.deepEqual(sel('a==2,b'), [false, true, false])
  assert.deepEqual(sel('a!=1'), [false, true, true])
  assert.deepEqual(sel('!b'), [true, false, true])
  assert.deepEqual(sel('a in (1, 2)'), [true, true, false])
  assert.deepEqual(sel('a notin (1)'), [false, true, true])
  assert.deepEqual(sel('a>1'), [false, true, false])
  assert.deepEqual(sel(''), [true, true, true])
  assert.throws(() => sel('a=1=2'), /unable to parse/)
  const fields = (o: JsonObject): Record<string, string> => ({ 'metadata.name': String((o.metadata as JsonObject).name) })
  assert.equal(parseFieldSelector('metadata.name=n1', fields, ['metadata.name'])(n({})), true)
  assert.equal(parseFieldSelector('metadata.name!=n1', fields, ['metadata.name'])(n({})), false)
  assert.throws(() => parseFieldSelector('spec.x=1', fields, ['metadata.name']), /field label not supported: spec.x/)
})

test('the Age column reads as kubectl\'s (HumanDuration)', () => {
  const s = 1000
  assert.deepEqual([-3 * s, 0, 119 * s, 120 * s, 9 * 60 * s + 5 * s, 3 * 3600 * s, 3 * 3600 * s + 60 * s, 30 * 3600 * s, 3 * 86400 * s + 3600 * s, 400 * 86400 * s, 3 * 365 * 86400 * s].map(humanDuration),
    ['<invalid>', '0s', '119s', '2m', '9m5s', '3h', '3h1m', '30h', '3d1h', '400d', '3y'])
})
