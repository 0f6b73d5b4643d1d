#!/usr/bin/env bash
# Installs what the end-to-end editor tests (test/editor/run.mjs) and the VSIX packaging
# (scripts/package.mjs) need, into the git-ignored .editor-test/ folder, never into the
# project's own package.json:
#   - code-server 4.100.3 (a real VS Code 1.100.3 whose extension host is server-side
#     Node, so the native debugger runs fully; the last one that runs on Node 20),
#   - playwright-core (drives the workbench in a browser; it never downloads one here),
#   - @vscode/vsce (packages the VSIX),
#   - Debian's chromium (the browser), and libkrb5-dev (code-server's kerberos module).
# Idempotent: each part is skipped when already there, so a second run takes a second.
# Needs root for apt-get; reaches only the npm registry and Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/.editor-test
tools=$dir/tools

CODE_SERVER_VERSION=4.100.3
PLAYWRIGHT_VERSION=1.56.1
VSCE_VERSION=3.7.1
RIPGREP_PKG_VERSION=1.18.0   # npm package that ships a prebuilt rg binary

log() { echo "editor-setup: $*"; }

# --- Debian packages ---------------------------------------------------------------
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
for t in gcc gdb make g++ python3; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- npm tools ---------------------------------------------------------------------
mkdir -p "$tools"
have() { # name version: installed at exactly that version?
  local pj="$tools/node_modules/$1/package.json"
  [ -f "$pj" ] && [ "$(node -p "require('$pj').version")" = "$2" ]
}
if have code-server "$CODE_SERVER_VERSION" && have playwright-core "$PLAYWRIGHT_VERSION" && have @vscode/vsce "$VSCE_VERSION" \
  && [ -x "$tools/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]; then
  log "code-server $CODE_SERVER_VERSION, playwright-core $PLAYWRIGHT_VERSION, @vscode/vsce $VSCE_VERSION already in $tools"
  exit 0
fi

case "$(node -p 'process.versions.node.split(".")[0]')" in
  20) ;;
  *) log "warning: code-server $CODE_SERVER_VERSION wants Node 20, this is $(node --version)" ;;
esac

# A private manifest so these stay out of the project's dependencies.
cat >"$tools/package.json" <<EOF
{
  "name": "cryo-editor-test-tools",
  "private": true,
  "description": "Tools for Cryo's end-to-end editor tests; installed by scripts/editor-setup.sh",
  "dependencies": {
    "code-server": "$CODE_SERVER_VERSION",
    "playwright-core": "$PLAYWRIGHT_VERSION",
    "@vscode/vsce": "$VSCE_VERSION"
  }
}
EOF

# @vscode/ripgrep's postinstall downloads rg from the internet (which fails here), but it
# first looks for the tarball in $TMPDIR/vscode-ripgrep-cache-<its version>/: put there a
# tarball holding the rg binary that the npm package @vscode/ripgrep-linux-x64 ships.
tmp=$dir/tmp
rm -rf "$tmp"
mkdir -p "$tmp/rg"
(cd "$tmp/rg" && npm pack --silent "@vscode/ripgrep-linux-x64@$RIPGREP_PKG_VERSION" >/dev/null && tar xzf ./*.tgz)
[ -x "$tmp/rg/package/bin/rg" ] || { log "no rg binary in @vscode/ripgrep-linux-x64"; exit 1; }
for v in 1.15.9 1.15.10 1.15.11 1.15.12 1.15.13 1.15.14; do
  mkdir -p "$tmp/vscode-ripgrep-cache-$v"
  for target in x86_64-unknown-linux-musl x86_64-unknown-linux-gnu; do
    for rgv in v13.0.0-10 v13.0.0-4 v13.0.0-13; do
      tar czf "$tmp/vscode-ripgrep-cache-$v/ripgrep-$rgv-$target.tar.gz" -C "$tmp/rg/package/bin" rg
    done
  done
done

log "npm install (code-server $CODE_SERVER_VERSION, playwright-core, @vscode/vsce); about a minute"
(
  cd "$tools"
  export TMPDIR=$tmp
  export npm_config_unsafe_perm=true   # as root, let the install scripts run as root
  export npm_config_yes=true           # a postinstall runs npx
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  npm install --no-audit --no-fund --no-save --loglevel=error
)
rm -rf "$tmp"

cs=$tools/node_modules/.bin/code-server
[ -x "$cs" ] || { log "code-server did not install"; exit 1; }
log "ready in $tools"
