#!/bin/sh
# Rebuilds bcpctl/web/static/age-encryption.js, the partner portal's in-browser age decryption and
# Ed25519 (SSHSIG) verification, from the npm registry's age-encryption (typage, by the age authors)
# at the versions package-lock.json pins, then records its SHA-256 (tests/bcpctl/web/test_vendored.py
# checks the committed file against it). Needs node and npm; run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
static="$here/../../bcpctl/web/static"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$here/entry.js" "$work/"
cd "$work"
npm ci --no-audit --no-fund --ignore-scripts
./node_modules/.bin/esbuild entry.js --bundle --format=iife --global-name=BcpAge --target=es2020 \
  --legal-comments=inline --outfile="$static/age-encryption.js"
{
  for pkg in age-encryption @noble/ciphers @noble/curves @noble/hashes @noble/post-quantum @scure/base; do
    version=$(node -p "require('./node_modules/$pkg/package.json').version")
    printf '==== %s %s (https://www.npmjs.com/package/%s)\n\n' "$pkg" "$version" "$pkg"
    cat "node_modules/$pkg/LICENSE"
    printf '\n'
  done
} > "$static/age-encryption.LICENSE.txt"
cd "$static"
sha256sum age-encryption.js age-encryption.LICENSE.txt > age-encryption.sha256
