// Header codecs for the dataplane: read and write fields in place on Buffers.
// See each module for the layout it implements.

export * from './reason'
export * from './bytes'
export * from './checksum'
export * from './errors'
export * from './mac'
export * from './ip'
export * from './net6'
export * from './ethernet'
export * from './arp'
export * from './ipv4'
export * from './udp'
export * from './tcp'
export * from './icmp'
export * from './ipv6'
export * from './icmp6'
export * from './vxlan'
