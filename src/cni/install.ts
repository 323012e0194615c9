// `weft cni install`: put the plugin and a conflist where container runtimes
// look (/opt/cni/bin, /etc/cni/net.d). The plugin is this executable, so the
// installed file is a two-line wrapper that runs it with this Node.
import fs from 'node:fs'
import path from 'node:path'

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

export function install (o: InstallOptions, mainJs: string): { plugin: string, conf: string } {
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
