// `weft cni install`: put the plugin and a conflist where container runtimes
// look (/opt/cni/bin, /etc/cni/net.d). The plugin is this executable, so the
// installed file is a two-line wrapper that runs it with this Node.
import fs from 'node:fs'
import path from 'node:path'
import { WeftError } from '../errors'
import { checkNetworkName, pluginNameProblem } from './validate'

export interface InstallOptions {
  binDir: string
  confDir: string
  /** the plugin's name: "weft", or "flannel" to stand in for flannel's */
  name: string
  network: string
  cniVersion: string
  subnetFile: string
}

export function conflist (o: InstallOptions): Record<string, unknown> {
  return {
    cniVersion: o.cniVersion,
    name: o.network,
    plugins: [
      { type: o.name, ...(o.subnetFile !== '/run/flannel/subnet.env' ? { subnetFile: o.subnetFile } : {}), delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: 'portmap', capabilities: { portMappings: true } }
    ]
  }
}

/**
 * Refuse what the plugin (or libcni, for the conflist's `type`) would refuse
 * later, and a name that would put the plugin outside binDir. Throws WeftError EUSAGE.
 */
function checkOptions (o: InstallOptions): void {
  const bad = pluginNameProblem(o.name)
  if (bad !== undefined) throw new WeftError('EUSAGE', `weft cni install --name: ${bad}`)
  try {
    checkNetworkName(o.network)
  } catch (err) {
    throw new WeftError('EUSAGE', `weft cni install --network ${JSON.stringify(o.network)}: ${(err as Error).message} (letters, digits, _ . -)`)
  }
  if (!path.isAbsolute(o.subnetFile)) throw new WeftError('EUSAGE', `weft cni install --subnet-file ${JSON.stringify(o.subnetFile)}: must be an absolute path`)
}

export function install (o: InstallOptions, mainJs: string): { plugin: string, conf: string } {
  checkOptions(o)
  fs.mkdirSync(o.binDir, { recursive: true, mode: 0o755 })
  fs.mkdirSync(o.confDir, { recursive: true, mode: 0o755 })
  const plugin = path.join(o.binDir, o.name)
  const wrapper = `#!/bin/sh\n# weft's CNI plugin (installed by \`weft cni install\`)\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(mainJs)} "$@"\n`
  writeAtomic(plugin, wrapper, 0o755)
  const conf = path.join(o.confDir, `10-${o.name}.conflist`)
  writeAtomic(conf, JSON.stringify(conflist(o), null, 2) + '\n', 0o644)
  return { plugin, conf }
}

function writeAtomic (file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, text, { mode })
  fs.chmodSync(tmp, mode)
  fs.renameSync(tmp, file)
}
