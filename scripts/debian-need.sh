#!/usr/bin/env bash
# Installs the Debian packages whose commands are missing: each argument is
# `command:package` (a command name, or an absolute path that must be executable).
# As root directly, otherwise through sudo; `apt-get update` only when something is missing.
set -euo pipefail
missing=()
for pair in "$@"; do
    cmd=${pair%%:*} package=${pair#*:}
    if [[ $cmd == /* ]]; then [[ -x $cmd ]] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
    missing+=("$package")
done
((${#missing[@]})) || exit 0
sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
echo "installing ${missing[*]} (Debian)"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
