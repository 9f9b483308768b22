#!/usr/bin/env bash
# Run this project's `bun test` under one Linux ABI on a Debian 12 x86_64 host.
#
#   bash scripts/run-abi.sh <abi> [bun test args...]
#   abi: linux-x64-glibc | linux-x64-musl | linux-arm64-glibc | linux-arm64-musl
#
# Env:
#   BUN_VERSION  Bun version to test (default: version of node_modules/bun/package.json,
#                else `bun --version`, else `npm view bun version`)
#   ABI_CACHE    cache directory, reused between runs (default /tmp/bun-abi)
# Exports to the tests: BUN_TEST_ABI=<abi>, and UA_EMULATED=1 for the arm64 ABIs (qemu-user).
#
# Needs root, apt (Debian 12 sources) and the npm registry, nothing else. Idempotent: each
# step is skipped when its result is already in $ABI_CACHE / already installed.
#  - Bun binaries come from the npm packages @oven/bun-linux-<target>@$BUN_VERSION.
#  - arm64 runs under qemu-user-static with the JIT on (bun:ffi refuses BUN_JSC_useJIT=0).
#    binfmt_misc is mounted/registered so Bun.spawn(process.execPath) works inside the
#    emulated process (the registration is kernel-global and is left in place).
#  - musl: Debian has musl but no musl-built libstdc++/libgcc_s (Bun's musl build needs
#    them). We use Debian's glibc-built libstdc++.so.6/libgcc_s.so.1 plus a small shim
#    (built against musl) for the glibc-only symbols they import. Every libc call, and every
#    bun:ffi dlopen of libc, goes to real musl; only Bun's C++ runtime helpers come from the
#    glibc-built libstdc++. This tests musl libc, not byte-for-byte Alpine.
#  Modelled on shared/tools/run-abi.sh (see the ABI notes, "Recommended CI recipe").
set -euo pipefail

usage="usage: run-abi.sh <linux-x64-glibc|linux-x64-musl|linux-arm64-glibc|linux-arm64-musl> [bun test args...]"
abi=${1:-}
[ -n "$abi" ] || { echo "$usage" >&2; exit 2; }
shift

die() { echo "run-abi[$abi]: ERROR: $*" >&2; exit 1; }
note() { echo "run-abi[$abi]: $*" >&2; }
trap 'rc=$?; echo "run-abi[$abi]: ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; exit $rc' ERR

case $abi in
  linux-x64-glibc)   pkg=bun-linux-x64 ;;
  linux-x64-musl)    pkg=bun-linux-x64-musl ;;
  linux-arm64-glibc) pkg=bun-linux-aarch64 ;;
  linux-arm64-musl)  pkg=bun-linux-aarch64-musl ;;
  *) echo "run-abi: unknown abi '$abi'" >&2; echo "$usage" >&2; exit 2 ;;
esac

[ "$(uname -m)" = x86_64 ] || die "this script expects a linux x86_64 host (got $(uname -s) $(uname -m))"

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

cache=${ABI_CACHE:-/tmp/bun-abi}
mkdir -p "$cache/logs"
log="$cache/logs/$abi-setup.log"
: >"$log"

# run <description> <cmd...>: run a setup step with output to the log; on failure show it.
run() {
  local what=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    echo "run-abi[$abi]: ERROR: $what failed: $*" >&2
    echo "---- last lines of $log ----" >&2; tail -n 30 "$log" >&2; echo "----" >&2
    exit 1
  fi
}

if [ -n "${BUN_VERSION:-}" ]; then
  ver=$BUN_VERSION
elif [ -f node_modules/bun/package.json ]; then
  ver=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' node_modules/bun/package.json | head -n1)
elif command -v bun >/dev/null 2>&1 && bun --version >/dev/null 2>&1; then
  ver=$(bun --version)
else
  ver=$(npm view bun version 2>>"$log") || die "cannot determine BUN_VERSION (npm view bun version failed)"
fi
[[ $ver =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "bad Bun version '$ver' (set BUN_VERSION)"

# One setup at a time per cache (two concurrent runs must not half-build the same dir).
# The lock fd is closed before the tests start.
exec 9>"$cache/.lock"
flock 9

export DEBIAN_FRONTEND=noninteractive

apt_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

apt_need() {  # install only what is missing; `apt-get update` only then, at most once per hour
  local missing=() p stamp="$cache/.apt-updated"
  for p; do apt_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "need root to apt-get install: ${missing[*]}"
  note "apt-get install ${missing[*]}"
  if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
    run "apt-get update" apt-get update -qq
    touch "$stamp"
  fi
  run "apt-get install ${missing[*]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do apt_installed "$p" || die "apt package $p is still not installed"; done
}

fetch_bun() {  # sets $bun to $cache/$pkg-$ver/bun, downloading it with npm pack if needed
  local d="$cache/$pkg-$ver" tmp
  if [ ! -x "$d/bun" ] || [ ! -s "$d/bun" ]; then
    note "npm pack @oven/$pkg@$ver"
    rm -rf "$d" "$cache"/.fetch.* && tmp=$(mktemp -d "$cache/.fetch.XXXXXX")  # under the lock: leftovers are stale
    run "npm pack @oven/$pkg@$ver" bash -c 'cd "$1" && npm pack --loglevel=error "@oven/$2@$3" && tar -xzf "oven-$2-$3.tgz" package/bin/bun' _ "$tmp" "$pkg" "$ver"
    [ -s "$tmp/package/bin/bun" ] || die "@oven/$pkg@$ver has no package/bin/bun"
    chmod +x "$tmp/package/bin/bun"
    mkdir -p "$d" && mv "$tmp/package/bin/bun" "$d/bun" && rm -rf "$tmp"
  fi
  bun="$d/bun"
}

qemu_binfmt() {  # lets emulated bun exec emulated children (Bun.spawn(process.execPath))
  local bm=/proc/sys/fs/binfmt_misc
  if [ ! -e "$bm/register" ]; then
    mount -t binfmt_misc binfmt_misc "$bm" 2>>"$log" ||
      { note "WARNING: cannot mount binfmt_misc; tests that spawn process.execPath will fail (exit 127)"; return 0; }
  fi
  if [ ! -e "$bm/qemu-aarch64" ]; then
    [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || die "/usr/lib/binfmt.d/qemu-aarch64.conf missing (qemu-user-static)"
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$bm/register" 2>>"$log" ||
      { note "WARNING: cannot register qemu-aarch64 in binfmt_misc; tests that spawn process.execPath will fail"; return 0; }
  elif head -n1 "$bm/qemu-aarch64" | grep -q disabled; then
    echo 1 >"$bm/qemu-aarch64" 2>>"$log" || note "WARNING: qemu-aarch64 binfmt entry is disabled and cannot be enabled"
  fi
}

write_shim() {  # glibc symbols that Debian's libstdc++.so.6 / libgcc_s.so.1 import and musl lacks
  cat >"$1" <<'EOF'
#define _GNU_SOURCE
#include <link.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>
char __libc_single_threaded = 0;
size_t __strftime_l(char *s, size_t n, const char *f, const struct tm *tm, locale_t l) { return strftime_l(s, n, f, tm, l); }
int __pthread_key_create(pthread_key_t *k, void (*d)(void *)) { return pthread_key_create(k, d); }
unsigned long __getauxval(unsigned long t) { return getauxval(t); }
uint32_t arc4random(void) { uint32_t v = 0; while (getrandom(&v, sizeof v, 0) != sizeof v) {} return v; }
struct dl_find_object { unsigned long long flags; void *map_start, *map_end, *link_map, *eh_frame; unsigned long long rsv[7]; };
struct q { uintptr_t pc; struct dl_find_object *r; int found; };
static int cb(struct dl_phdr_info *info, size_t sz, void *arg) {
  struct q *q = arg; uintptr_t lo = UINTPTR_MAX, hi = 0; void *eh = 0; int hit = 0; (void)sz;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i]; uintptr_t a = info->dlpi_addr + p->p_vaddr;
    if (p->p_type == PT_LOAD) { if (a < lo) lo = a; if (a + p->p_memsz > hi) hi = a + p->p_memsz;
      if (q->pc >= a && q->pc < a + p->p_memsz) hit = 1; }
    else if (p->p_type == PT_GNU_EH_FRAME) eh = (void *)a;
  }
  if (!hit) return 0;
  memset(q->r, 0, sizeof *q->r); q->r->map_start = (void *)lo; q->r->map_end = (void *)hi; q->r->eh_frame = eh;
  q->found = 1; return 1;
}
int _dl_find_object(void *pc, struct dl_find_object *r) { struct q q = {(uintptr_t)pc, r, 0}; dl_iterate_phdr(cb, &q); return q.found ? 0 : -1; }
struct elt { void (*d)(void *); void *o; struct elt *next; };
static __thread struct elt *tl_head; static pthread_key_t tl_key; static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static void tl_run(void *u) { (void)u; while (tl_head) { struct elt *e = tl_head; tl_head = e->next; e->d(e->o); free(e); } }
static void tl_run_main(void) { tl_run(0); }
static void tl_init(void) { pthread_key_create(&tl_key, tl_run); atexit(tl_run_main); }
int __cxa_thread_atexit_impl(void (*d)(void *), void *o, void *dso) {
  (void)dso; pthread_once(&tl_once, tl_init); struct elt *e = malloc(sizeof *e); if (!e) return -1;
  e->d = d; e->o = o; e->next = tl_head; tl_head = e; pthread_setspecific(tl_key, (void *)1); return 0;
}
#ifdef __x86_64__  /* libgcc_s exports these only under a hidden version, which musl's loader skips */
struct { unsigned vendor, type, subtype, features[1]; } __cpu_model;
int __cpu_indicator_init(void) { return 0; }
#endif
EOF
}

# Check that the prepared runtime starts and reports the pinned version ("$@" = launcher).
smoke() {
  local out
  out=$("$@" --version 2>&1) || die "bun does not start under $abi: $out"
  [ "$out" = "$ver" ] || die "bun under $abi reports version '$out', expected $ver"
}

export BUN_TEST_ABI="$abi"   # lets tests know which ABI runs them
unset UA_EMULATED

case $abi in
  linux-x64-glibc)
    if [ -x node_modules/bun/bin/bun.exe ] && [ "$(node_modules/bun/bin/bun.exe --version 2>/dev/null)" = "$ver" ]; then
      bun=$root_dir/node_modules/bun/bin/bun.exe    # the one npm installed: no second download
    else
      fetch_bun
    fi
    launch=("$bun")
    ;;

  linux-arm64-glibc)
    apt_need qemu-user-static libc6-arm64-cross
    qemu_binfmt
    fetch_bun
    # QEMU_LD_PREFIX (not -L) so that emulated child processes inherit it
    export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu UA_EMULATED=1
    launch=(qemu-aarch64-static "$bun")
    ;;

  linux-x64-musl)
    apt_need musl musl-tools patchelf
    fetch_bun
    # Private copy of the musl bun with RUNPATH=$ORIGIN/compat. No LD_LIBRARY_PATH, so glibc
    # programs the tests spawn (node, ...) never load the musl-linked shim.
    d="$cache/x64-musl-run"
    if [ ! -e "$d/.ok" ] || [ "$(cat "$d/.ok")" != "$ver" ]; then
      note "building x64-musl runtime in $d"
      rm -rf "$d" && mkdir -p "$d/compat"
      write_shim "$d/compat/shim.c"
      run "build musl shim" musl-gcc -O2 -shared -fPIC -Wl,-soname,libglibc-shim.so -o "$d/compat/libglibc-shim.so" "$d/compat/shim.c"
      run "copy libstdc++" cp -L /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 "$d/compat/"
      run "patch libstdc++" patchelf --remove-needed ld-linux-x86-64.so.2 --add-needed libglibc-shim.so "$d/compat/libstdc++.so.6"
      run "copy bun" cp "$bun" "$d/bun"
      run "patch bun rpath" patchelf --set-rpath '$ORIGIN/compat' "$d/bun"
      echo "$ver" >"$d/.ok"
    fi
    launch=("$d/bun")
    ;;

  linux-arm64-musl)
    apt_need qemu-user-static gcc-aarch64-linux-gnu libstdc++6-arm64-cross libgcc-s1-arm64-cross patchelf
    qemu_binfmt
    fetch_bun
    r="$cache/arm64-musl-root"
    if [ ! -e "$r/.ok" ]; then
      note "building arm64-musl root in $r"
      a="$cache/apt-arm64"
      rm -rf "$r" "$a" && mkdir -p "$r/compat" "$r/etc" "$a/lists/partial" "$a/cache/archives/partial" "$a/debs"
      # musl:arm64 .debs without `dpkg --add-architecture arm64`: private apt state, nothing installed
      O=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::State::Lists="$a/lists"
         -o Dir::Cache="$a/cache" -o Dir::State::status=/dev/null -o Debug::NoLocking=1)
      run "apt-get update (private arm64 lists)" apt-get "${O[@]}" update -qq
      run "apt-get download musl:arm64 musl-dev:arm64" bash -c 'cd "$1" && shift && apt-get "$@" download musl musl-dev' _ "$a/debs" "${O[@]}"
      n=0
      for deb in "$a"/debs/*.deb; do
        if [ -f "$deb" ]; then run "extract $deb" dpkg-deb -x "$deb" "$r"; n=$((n + 1)); fi
      done
      [ "$n" -ge 2 ] || die "musl arm64 .debs not downloaded (got $n)"
      [ -e "$r/lib/ld-musl-aarch64.so.1" ] || die "musl arm64 loader missing in $r"
      write_shim "$r/compat/shim.c"
      # -lc (not the file path): musl's libc.so has no SONAME, a path would be baked into NEEDED
      run "cross-build arm64 musl shim" aarch64-linux-gnu-gcc -O2 -shared -fPIC -nostdinc -nostdlib \
        -isystem "$r/usr/include/aarch64-linux-musl" -isystem "$(aarch64-linux-gnu-gcc -print-file-name=include)" \
        -Wl,-soname,libglibc-shim.so -o "$r/compat/libglibc-shim.so" "$r/compat/shim.c" -L"$r/lib/aarch64-linux-musl" -lc
      run "copy arm64 libstdc++" cp -L /usr/aarch64-linux-gnu/lib/libstdc++.so.6 /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 "$r/compat/"
      run "patch arm64 libstdc++" patchelf --add-needed libglibc-shim.so "$r/compat/libstdc++.so.6"
      printf '/compat\n/lib/aarch64-linux-musl\n' >"$r/etc/ld-musl-aarch64.path"  # seen through QEMU_LD_PREFIX
      touch "$r/.ok"
    fi
    export QEMU_LD_PREFIX="$r" UA_EMULATED=1
    launch=(qemu-aarch64-static "$bun")
    ;;
esac

smoke "${launch[@]}"
exec 9>&-   # release the setup lock
trap - ERR
note "bun $ver: ${launch[*]} test $*"
exec "${launch[@]}" test "$@"
