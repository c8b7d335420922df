#!/usr/bin/env bash
# `make install` and `make uninstall`. Every installed path is written to a manifest, and
# uninstall removes exactly those paths: the program tree, the wrappers, units, sysusers and
# tmpfiles entries, the polkit rule, man pages, cnctl's bash completion, the directories install
# created, and the default configuration only while it is unchanged (an edited one stays, and we
# say so).
#
# Usage: install.sh install|uninstall   (the Makefile passes the directories as variables)
set -euo pipefail

: "${DESTDIR=}" "${PREFIX:?}" "${BINDIR:?}" "${LIBEXECDIR:?}" "${LIBDIR:?}" "${UNITDIR:?}"
: "${SYSUSERSDIR:?}" "${TMPFILESDIR:?}" "${POLKITRULESDIR:?}" "${SYSCONFDIR:?}" "${MANDIR:?}"
: "${BASHCOMPLETIONDIR:?}" "${NETWORKDCONFDIR:?}"
: "${NODE:=node}"

SRC=$(cd "$(dirname "$0")/.." && pwd)
MANIFEST="$LIBDIR/install-manifest.txt"
CONFIG="$SYSCONFDIR/cloud-network/cloud-network.toml"
ENTRY_POINTS=(cloud-network cnctl cloud-network-helper)

die() { echo "make $ACTION: $*" >&2; exit 1; }

# On the live system (no DESTDIR) with systemd running, install and uninstall also tell
# systemd; a staged install (DESTDIR set, as in packaging and tests) never touches the host.
live_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

entries=()
record() { entries+=("$*"); }

# Creates a directory and its missing parents, recording each one it created (top down), so
# uninstall can remove them again when they are empty.
make_dir() {
  local dir=$1 missing=()
  while [ -n "$dir" ] && [ "$dir" != / ] && [ ! -d "$DESTDIR$dir" ]; do
    missing=("$dir" "${missing[@]}")
    dir=$(dirname "$dir")
  done
  for dir in "${missing[@]}"; do
    mkdir -m 0755 "$DESTDIR$dir"
    record dir "$dir"
  done
}

put() { # MODE SOURCE DEST: install one file (DEST without DESTDIR)
  make_dir "$(dirname "$3")"
  install -m "$1" "$2" "$DESTDIR$3"
  record file "$3"
}

put_text() { # MODE DEST: install stdin as one file (feed it with < <(...): a pipe would run
            # this in a subshell and lose the manifest entry)
  local tmp
  tmp=$(mktemp)
  cat > "$tmp"
  put "$1" "$tmp" "$2"
  rm -f "$tmp"
}

do_install() {
  for name in "${ENTRY_POINTS[@]}"; do
    [ -f "$SRC/bin/$name" ] || die "$SRC/bin/$name is missing: the $name entry point is not written or not checked out"
  done
  [ -d "$SRC/dist" ] || die "$SRC/dist is missing: run make build first"
  local node
  node=$(command -v "$NODE") || die "cannot find $NODE on PATH: the wrappers need Node.js 20 or newer"

  [ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
  # A reinstall keeps what the previous install created and the config it may still remove.
  local old="$DESTDIR$MANIFEST"
  if [ -f "$old" ]; then
    while IFS= read -r line; do
      case $line in dir\ *|config\ *) entries+=("$line") ;; esac
    done < "$old"
  fi

  # The program: the build, the entry points and, of node_modules, only the files the bundles
  # load (tools/runtime-modules.mjs): the native addons with this machine's prebuilt binary.
  make_dir "$LIBDIR"
  local lib="$DESTDIR$LIBDIR"
  rm -rf "$lib/dist" "$lib/bin" "$lib/node_modules"
  cp -R "$SRC/dist" "$lib/dist"
  rm -f "$lib/dist/.built"
  mkdir -p "$lib/bin"
  for name in "${ENTRY_POINTS[@]}"; do install -m 0755 "$SRC/bin/$name" "$lib/bin/$name"; done
  # the entry points and the build are CommonJS (tools/build.mjs): bin/package.json says so
  install -m 0644 "$SRC/bin/package.json" "$lib/bin/package.json"
  install -m 0644 "$SRC/package.json" "$lib/"
  "$node" "$SRC/tools/runtime-modules.mjs" "$lib/node_modules" >/dev/null \
    || die "tools/runtime-modules.mjs could not copy the native addons into $lib/node_modules: is node_modules installed (make build)?"
  record tree "$LIBDIR"

  # Wrappers that run the installed copy with the node found now (systemd's PATH may differ).
  local name dir
  for name in "${ENTRY_POINTS[@]}"; do
    dir=$BINDIR
    [ "$name" = cloud-network-helper ] && dir=$LIBEXECDIR
    put_text 0755 "$dir/$name" < <(printf '#!/bin/sh\n# Installed by cloud-network'"'"'s make install: runs the copy in %s.\nexec %s %s/bin/%s "$@"\n' \
      "$LIBDIR" "$node" "$LIBDIR" "$name")
  done

  # Units: ExecStart paths follow PREFIX.
  local unit
  for unit in cloud-network.service cloud-network-helper.service; do
    put_text 0644 "$UNITDIR/$unit" < <(sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@LIBEXECDIR@|$LIBEXECDIR|g" \
      -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" "$SRC/systemd/$unit.in")
  done
  put 0644 "$SRC/systemd/cloud-network.socket" "$UNITDIR/cloud-network.socket"
  put 0644 "$SRC/systemd/sysusers.d/cloud-network.conf" "$SYSUSERSDIR/cloud-network.conf"
  put 0644 "$SRC/systemd/tmpfiles.d/cloud-network.conf" "$TMPFILESDIR/cloud-network.conf"
  put 0644 "$SRC/polkit/50-cloud-network.rules" "$POLKITRULESDIR/50-cloud-network.rules"
  # systemd-networkd keeps cloud-network's routes and rules (read at networkd's next start)
  put 0644 "$SRC/systemd/networkd.conf.d/50-cloud-network.conf" "$NETWORKDCONFDIR/50-cloud-network.conf"

  put 0644 "$SRC/completions/cnctl" "$BASHCOMPLETIONDIR/cnctl"

  local page section
  for page in cloud-network.8 cnctl.1 cloud-network.toml.5; do
    section=${page##*.}
    # the pages name the installed paths of this PREFIX, as the units do
    put_text 0644 "$MANDIR/man$section/$page.gz" < <(sed -e "s|@LIBEXECDIR@|$LIBEXECDIR|g" -e "s|@UNITDIR@|$UNITDIR|g" \
      -e "s|@NETWORKDCONFDIR@|$NETWORKDCONFDIR|g" "$SRC/man/$page" | gzip -9 -n -c)
  done
  # cloud-network(8) describes the helper too
  ln -sf cloud-network.8.gz "$DESTDIR$MANDIR/man8/cloud-network-helper.8.gz"
  record file "$MANDIR/man8/cloud-network-helper.8.gz"

  # The default configuration, never over an existing one.
  if [ -e "$DESTDIR$CONFIG" ]; then
    echo "keeping the existing $DESTDIR$CONFIG (the new default is in $SRC/etc/cloud-network.toml)"
  else
    make_dir "$(dirname "$CONFIG")"
    install -m 0644 "$SRC/etc/cloud-network.toml" "$DESTDIR$CONFIG"
    record config "$CONFIG" "$(sha256sum < "$DESTDIR$CONFIG" | cut -d' ' -f1)"
  fi

  printf '%s\n' "${entries[@]}" | awk '!seen[$0]++' > "$DESTDIR$MANIFEST"
  chmod 0644 "$DESTDIR$MANIFEST"

  if live_systemd; then
    systemd-sysusers "$SYSUSERSDIR/cloud-network.conf"
    systemd-tmpfiles --create "$TMPFILESDIR/cloud-network.conf"
    systemctl daemon-reload
    echo "installed; start it with: systemctl enable --now cloud-network.socket cloud-network.service"
    if systemctl -q is-active systemd-networkd.service 2>/dev/null; then
      echo "systemd-networkd runs: restart it once (systemctl restart systemd-networkd) so that it keeps cloud-network's routes and rules"
    fi
  else
    echo "installed into ${DESTDIR:-/}; the manifest is $DESTDIR$MANIFEST"
  fi
}

do_uninstall() {
  local manifest="$DESTDIR$MANIFEST"
  [ -f "$manifest" ] || die "no install manifest at $manifest: nothing installed with PREFIX=$PREFIX${DESTDIR:+ DESTDIR=$DESTDIR}"
  if live_systemd; then
    # Stops the services; what the agent configured stays. Removing it takes the agent stopped
    # first, then `cloud-network --cleanup` while the helper's socket is there, then uninstall.
    systemctl disable --now cloud-network.service cloud-network.socket 2>/dev/null || true
    systemctl stop cloud-network-helper.service 2>/dev/null || true
    echo "stopped cloud-network; the addresses, routes and rules it configured stay until the next boot" \
      "(README, Day 2: systemctl stop cloud-network.service and cloud-network --cleanup before make uninstall remove them)"
  fi
  local -a lines dirs=()
  mapfile -t lines < "$manifest"
  local line kind path sum
  for line in "${lines[@]}"; do
    read -r kind path sum <<< "$line"
    case $kind in
      file) rm -f "$DESTDIR$path" ;;
      tree) [ "$path" = "$LIBDIR" ] || die "refusing to remove $path: the manifest may only name $LIBDIR as a tree"
            rm -rf "$DESTDIR$path" ;;
      config)
        if [ -f "$DESTDIR$path" ] && [ "$(sha256sum < "$DESTDIR$path" | cut -d' ' -f1)" = "$sum" ]; then
          rm -f "$DESTDIR$path"
        elif [ -e "$DESTDIR$path" ]; then
          echo "keeping $DESTDIR$path: it was changed after install (remove it yourself if unwanted)"
        fi ;;
      dir) dirs=("$path" "${dirs[@]}") ;;
      *) die "unknown line in $manifest: $line" ;;
    esac
  done
  # Directories last, deepest first, and only when empty (a kept config keeps its directory).
  for path in "${dirs[@]}"; do rmdir "$DESTDIR$path" 2>/dev/null || true; done
  live_systemd && systemctl daemon-reload
  echo "uninstalled from ${DESTDIR:-/}"
}

ACTION=${1:-}
case $ACTION in
  install) do_install ;;
  uninstall) do_uninstall ;;
  *) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
