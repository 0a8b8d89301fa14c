#!/usr/bin/env bash
# Installs the Debian packages that the integration tests (and, with --bench, the benchmark)
# need, only when they are missing. Debian's postinst scripts would start system daemons
# (sshd, ceph, prometheus); a policy-rc.d that exits 101 keeps them stopped: the tests start
# their own private instances on 127.0.0.1.
set -euo pipefail

want=()
need() { # need COMMAND PACKAGE...: queue PACKAGE unless COMMAND is found
  local cmd=$1; shift
  if ! command -v "$cmd" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$cmd" >/dev/null 2>&1; then
    want+=("$@")
  fi
}

need initdb postgresql
need pg_dump postgresql-client
need sshd openssh-server
need ssh openssh-client
need age age
need promtool prometheus
need radosgw radosgw
need ceph-mon ceph-mon
need ceph-osd ceph-osd
need sqlite3 sqlite3
need rclone rclone  # tests/bench/test_replication.py runs the replication benchmark small
need pgbackrest pgbackrest  # bench/wal.py's PostgreSQL archiving anchor; tests/bench/test_wal.py runs it small
need ip iproute2  # drill isolation checks: route lookups in a sandbox network namespace
need systemd-analyze systemd  # tests/dc/test_examples.py verifies examples/bcpctl-serve.service
need chromium chromium  # browser tests of bcpctl/web (Playwright drives /usr/bin/chromium)
# bcpctl mount (mfusepy loads libfuse 2 or 3 with ctypes); tests/backup/test_mount.py mounts for real
if ! ldconfig -p 2>/dev/null | grep -qE 'libfuse3?\.so\.[23]'; then want+=(libfuse2); fi
# Japanese glyphs in the browser tests' screenshots (the pages are Japanese first).
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then want+=(fonts-ipafont-gothic); fi
if [[ "${1:-}" == "--bench" ]]; then
  need restic restic
  need borg borgbackup
fi

if [[ ${#want[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: need root or sudo to install: ${want[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-system-deps: installing ${want[*]}"
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null
