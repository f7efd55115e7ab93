#!/usr/bin/env bash
# Installs the Debian packages OpenTransit needs (idempotent: does nothing when all are present).
set -euo pipefail
PACKAGES=(
  iproute2 nftables ethtool           # netns, veth, routes, rules; firewall; offload settings
  libnftables-dev                     # the addon applies/reads nft JSON in-process (libnftables)
  clang llvm libbpf-dev bpftool       # BPF objects and the libbpf addon
  bird2                               # BGP
  etcd-server etcd-client             # fleet store
  tshark python3-scapy                # independent packet decoders/crafters in tests
  iperf3 hping3                       # traffic for tests, demo and benchmarks
  make g++ python3 pkg-config         # node-gyp for the libbpf addon
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once, non-interactively.
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# etcd-server's package starts a system etcd on the default ports; the project runs its own members.
if systemctl is-active --quiet etcd 2>/dev/null; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
