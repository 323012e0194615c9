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
        "native/src/sock_run.c",
        "native/src/spawn.c",
        "native/src/tun.c",
        "native/src/tun_io.c"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=c++17", "-Wno-missing-field-initializers"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
