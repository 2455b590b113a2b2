#!/bin/bash
# The launcher: runs inside an app container as vcap (contracts/buildpacks.md, "The launcher").
# Usage: launcher '<start command>'
# Sources the profile scripts the buildpacks left, then execs the start command with bash -c,
# so signals reach the app.
set -o pipefail
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "launcher: no start command given" >&2
  exit 64
fi
export HOME=/home/vcap/app
export TMPDIR="${TMPDIR:-/home/vcap/tmp}"
export DEPS_DIR="${DEPS_DIR:-/home/vcap/deps}"
export USER="${USER:-vcap}"
export LANG="${LANG:-C.UTF-8}"
cd /home/vcap/app || { echo "launcher: no app directory" >&2; exit 65; }
for f in /home/vcap/deps/*/profile.d/*.sh /home/vcap/profile.d/*.sh /home/vcap/app/.profile.d/*.sh; do
  if [ -f "$f" ]; then
    # shellcheck disable=SC1090
    . "$f"
  fi
done
if [ -f /home/vcap/app/.profile ]; then
  # shellcheck disable=SC1091
  . /home/vcap/app/.profile
fi
exec bash -c "$1"
