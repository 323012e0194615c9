// The kernel-configuration layer in one import: links, addresses, routes,
// sysctls and flanneld's iptables rules, all driven through the standard
// tools (ip, sysctl, iptables) so weft needs no netlink code of its own.
export { KernelCommandError, commandLine, probe, run, type KernelOptions, type ProbeResult, type RunOptions } from './exec'
export { addAddress, addRoute, delAddress, delRoute, linkExists, listAddresses, listRoutes, normalizeDst, replaceRoute, setLinkUp, type Route, type RouteSpec } from './link'
export { enableForwarding, getSysctl, setSysctl, sysctlPath } from './sysctl'
export { TrafficRules, versionHasRandomFully, type TrafficRulesOptions } from './iptables'
export { FORWARD_CHAIN, FORWARD_COMMENT, KUBE_PROXY_MARK, MASQ_CHAIN, MASQ_COMMENT, canonicalCidr, forwardChain, masqChain, ruleLine, type ChainSet, type Cidr, type Table } from './iptables-rules'
export { PrivilegeError, checkPrivileges, type Capability, type PrivilegeNeeds } from './privileges'
