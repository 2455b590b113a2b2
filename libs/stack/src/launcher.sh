#!/bin/bash
# The launcher: runs inside an app container as vcap.
# Usage: launcher '<start command>'
# Sources the profile scripts the buildpacks left, then execs the start command with bash -c,
# so signals reach the app.
# The droplet lives under /home/vcap; a cell that runs apps as plain processes (no container)
# points PAAS_VCAP_ROOT at the instance's copy of it instead.
set -o pipefail
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "launcher: no start command given" >&2
  exit 64
fi
VCAP_ROOT="${PAAS_VCAP_ROOT:-/home/vcap}"
unset PAAS_VCAP_ROOT
export HOME="$VCAP_ROOT/app"
export TMPDIR="${TMPDIR:-$VCAP_ROOT/tmp}"
export DEPS_DIR="${DEPS_DIR:-$VCAP_ROOT/deps}"
export USER="${USER:-vcap}"
export LANG="${LANG:-C.UTF-8}"
cd "$VCAP_ROOT/app" || { echo "launcher: no app directory" >&2; exit 65; }
for f in "$VCAP_ROOT"/deps/*/profile.d/*.sh "$VCAP_ROOT"/profile.d/*.sh "$VCAP_ROOT"/app/.profile.d/*.sh; do
  if [ -f "$f" ]; then
    # shellcheck disable=SC1090
    . "$f"
  fi
done
if [ -f "$VCAP_ROOT/app/.profile" ]; then
  # shellcheck disable=SC1091
  . "$VCAP_ROOT/app/.profile"
fi
exec bash -c "$1"
