#!/usr/bin/env bash
# Sets up a fresh Debian machine (Node 20 already installed) to build and
# test weft: the system packages the tests drive for real, then `npm ci`,
# which builds the native addon (node-gyp) and compiles the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$have" -lt "$need_node_major" ]; then
  echo "weft needs Node.js >= $need_node_major (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# namespaces, veth, ping, TCP load and captures; ethtool for device offloads;
# etcd for the flannel store; bridge + host-local for CNI; libpcap for `cap`;
# iptables for masquerade and forward rules, nftables for flannel's
# EnableNFTables mode; unshare/setpriv; the toolchain node-gyp needs;
# clang-format for `npm run lint` (the C in native/); openssl for the test
# Kubernetes API server's certificate; patchelf for the DaemonSet's CNI
# install step (test/deploy runs it); libsodium for the addon's
# XChaCha20-Poly1305 (the wireguard backend's cookie replies); wireguard-go
# and wireguard-tools (`wg`) for the lab's reference WireGuard nodes and for
# checking weft's `wg` socket.
packages=(
  iproute2 iputils-ping iperf3 tcpdump ethtool
  etcd-server etcd-client
  containernetworking-plugins
  libpcap-dev libsodium-dev
  iptables nftables util-linux openssl patchelf
  wireguard-go wireguard-tools
  make g++ python3
  clang-format
)
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # kubectl checks the lab's stand-in Kubernetes API server; Debian's is in
  # kubernetes-client (any kubectl already on the PATH does as well)
  command -v kubectl >/dev/null || missing+=(kubernetes-client)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not root, so no Debian packages installed; namespace tests will be skipped" >&2
fi

# node-gyp builds against the headers Debian's/the image's Node ships, when
# present, instead of downloading them (there may be no internet).
if [ -f /usr/include/node/node_api.h ] && [ -z "${npm_config_nodedir:-}" ]; then
  export npm_config_nodedir=/usr
fi
npm ci --no-audit --no-fund
