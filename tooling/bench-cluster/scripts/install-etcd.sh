#!/usr/bin/env bash
# Installs etcd 3.4 (Debian package etcd-server) so that `pnpm bench:cluster` can run the side-by-side
# comparison. The package also ships a systemd unit; the benchmark never uses it: it starts its own
# 3-member cluster on loopback with random ports and a temporary data directory.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then
  echo "etcd already installed: $(etcd --version | head -n 1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends etcd-server
etcd --version | head -n 1
