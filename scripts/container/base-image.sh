#!/usr/bin/env bash
# Makes a stand-in for the official node:20-bookworm-slim image on a machine that can reach Debian's
# package mirror and the npm registry but no container registry (so `podman pull` cannot work).
# The stand-in is a minimal Debian bookworm made with debootstrap, plus the Node.js 20 of this
# machine placed where the official image puts it (/usr/local/bin/node, npm under /usr/local/lib,
# headers under /usr/local/include/node so node-gyp needs no download). It is tagged with the
# official name, so deploy/Dockerfile builds unchanged with `podman build --pull=never`.
#
# Nothing is done when the image already exists, unless --force is given. Run as root.
# Usage: scripts/container/base-image.sh [--force]
set -euo pipefail

image=docker.io/library/node:20-bookworm-slim
force=false
[[ "${1:-}" == --force ]] && force=true

if ! $force && podman image exists "$image"; then
  echo "base image $image is present (--force builds it again)"
  exit 0
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [[ "$major" != 20 ]]; then
  echo "this machine runs Node $major; the stand-in must carry Node 20 like the image it replaces" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi

# Use the Debian mirror apt on this machine already uses (deb822 sources first, then sources.list).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [[ -z "$mirror" ]]; then
  mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /tmp/minigate-base.XXXXXX)
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT

echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null

# Node: the binary, npm (and corepack) next to it, and the headers native modules compile against.
node_bin=$(readlink -f "$(command -v node)")
node_prefix=$(dirname "$(dirname "$node_bin")")
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib" "$rootfs/usr/local/include"
cp -a "$node_prefix/lib/node_modules" "$rootfs/usr/local/lib/"
if [[ -d "$node_prefix/include/node" ]]; then cp -a "$node_prefix/include/node" "$rootfs/usr/local/include/"; fi
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The build inside the image must reach the same npm registry as this machine, through the same
# TLS trust (an egress proxy may re-sign), and find Node's headers locally. This stays in the
# local stand-in only; the official image needs none of it.
mkdir -p "$rootfs/usr/local/etc" "$rootfs/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
{
  echo "registry=$(npm config get registry)"
  echo "cafile=/etc/ssl/certs/ca-certificates.crt"
  echo "nodedir=/usr/local"
  echo "fund=false"
  echo "audit=false"
  echo "update-notifier=false"
} > "$rootfs/usr/local/etc/npmrc"

rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["node"]' \
  --change "ENV NODE_VERSION=$(node -p process.versions.node)" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  - "$image" >/dev/null
podman tag "$image" localhost/node:20-bookworm-slim
podman run --rm --network host "$image" node -e 'console.log(`base image ready: Node ${process.version}`)'
