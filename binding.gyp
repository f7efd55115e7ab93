# The libbpf N-API addon (src/kernel/bpf/native): `make addon` builds build/Release/opentransit_bpf.node against the
# Node headers in /usr/include/node (no download), Debian's libbpf and libnftables (libnftables-dev: in-process nft).
{
  "targets": [
    {
      "target_name": "opentransit_bpf",
      "sources": [
        "src/kernel/bpf/native/addon.cc",
        "src/kernel/bpf/native/maps.cc",
        "src/kernel/bpf/native/objects.cc",
        "src/kernel/bpf/native/netns.cc",
        "src/kernel/bpf/native/ringbuf.cc",
        "src/kernel/bpf/native/nsfs.cc",
        "src/kernel/bpf/native/nft.cc",
        "src/kernel/bpf/native/nlwatch.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=gnu++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lbpf", "-lnftables"]
    }
  ]
}
