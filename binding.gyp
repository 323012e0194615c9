{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/busy.c",
        "native/src/gso.c",
        "native/src/probe.c",
        "native/src/sock.c",
        "native/src/sock_io.c",
        "native/src/peer_offload.c",
        "native/src/peer_offload_addon.cc",
        "native/src/sock_run.c",
        "native/src/spawn.c",
        "native/src/tun.c",
        "native/src/tun_io.c",
        "native/src/wg_addon.cc",
        "native/src/wg_batch.c",
        "native/src/wg_crypto.c"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/src"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_c": ["-std=gnu11"],
      # wg.h declares InitWg, which addon.cc's Init calls: forced into the C++
      # files so that addon.cc needs no include line for it
      "cflags_cc": ["-std=c++17", "-Wno-missing-field-initializers", "-include", "wg.h"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      # libsodium for XChaCha20-Poly1305 (OpenSSL has none); OpenSSL itself
      # is node's own, whose symbols the node binary exports
      "libraries": ["-lsodium"]
    }
  ]
}
