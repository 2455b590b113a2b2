#!/bin/bash
# The lifecycle builder: runs inside the staging container as vcap.
# Inputs (environment, with the container defaults):
#   PAAS_BUILD_DIR=/tmp/app PAAS_CACHE_DIR=/tmp/cache PAAS_DEPS_DIR=/tmp/deps
#   PAAS_BUILDPACKS_DIR=/tmp/buildpacks (one directory per buildpack: 0, 1, ...)
#   PAAS_OUTPUT_DIR=/tmp/output PAAS_SKIP_DETECT=true|false
#   PAAS_BUILDPACK_NAMES (one name per line, in order)
# Outputs in PAAS_OUTPUT_DIR: detected_buildpack, detect_output, buildpack_index, release.yml,
# failure (error id on line 1, message on line 2) when staging fails.
set -o pipefail
BUILD_DIR="${PAAS_BUILD_DIR:-/tmp/app}"
CACHE_DIR="${PAAS_CACHE_DIR:-/tmp/cache}"
DEPS_DIR="${PAAS_DEPS_DIR:-/tmp/deps}"
BPS="${PAAS_BUILDPACKS_DIR:-/tmp/buildpacks}"
OUT="${PAAS_OUTPUT_DIR:-/tmp/output}"
SKIP_DETECT="${PAAS_SKIP_DETECT:-false}"
mapfile -t NAMES <<< "${PAAS_BUILDPACK_NAMES:-}"
COUNT=0
while [ -d "$BPS/$COUNT" ]; do COUNT=$((COUNT + 1)); done
TAIL="$OUT/.tail"

# With runc, the container's own memory cgroup is mounted: record OOM kills for the stager.
SCRIPT_NS=0
# Runs a command, adding its wall time to SCRIPT_NS (time spent in buildpack scripts).
timed() {
  local t0 t1 rc
  t0=$(date +%s%N); "$@"; rc=$?; t1=$(date +%s%N)
  SCRIPT_NS=$((SCRIPT_NS + t1 - t0))
  return $rc
}
record_oom() {
  printf '%s' "$SCRIPT_NS" > "$OUT/script_ns" 2>/dev/null
  if [ -n "${PAAS_CGROUP_OOM:-}" ]; then
    sed -n 's/^oom_kill //p' /sys/fs/cgroup/memory/memory.oom_control > "$OUT/oom_kills" 2>/dev/null
  fi
}
trap record_oom EXIT
fail() { # error_id message
  printf '%s\n%s\n' "$1" "$2" > "$OUT/failure"
  exit 1
}
# Runs a buildpack script, keeps its last lines for the failure message.
run_script() {
  "$@" 2>&1 | tee "$TAIL"
  return "${PIPESTATUS[0]}"
}
last_lines() { tail -n 5 "$TAIL" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }
name_of() { printf '%s' "${NAMES[$1]:-buildpack-$1}"; }

[ "$COUNT" -gt 0 ] || fail "NoAppDetectedError" "An app was not successfully detected by any available buildpack (no buildpacks installed)"
mkdir -p "$DEPS_DIR" "$CACHE_DIR" "$OUT"
export CF_STACK="${CF_STACK:-bookworm}" DEPS_DIR

ENV_DIR="$(mktemp -d)"
while IFS='=' read -r -d '' key value; do
  case "$key" in PAAS_*|HOME|PATH|PWD|SHLVL|_|OLDPWD) continue ;; esac
  printf '%s' "$value" > "$ENV_DIR/$key"
done < <(env -0)

FINAL=-1
SUPPLIES=()
if [ "$SKIP_DETECT" = "true" ]; then
  FINAL=$((COUNT - 1))
  for ((i = 0; i < FINAL; i++)); do SUPPLIES+=("$i"); done
  : > "$OUT/detect_output"
else
  tried=()
  for ((i = 0; i < COUNT; i++)); do
    tried+=("$(name_of "$i")")
    if [ -x "$BPS/$i/bin/detect" ]; then
      t0=$(date +%s%N)
      out="$("$BPS/$i/bin/detect" "$BUILD_DIR" 2>&1)"; rc=$?
      SCRIPT_NS=$((SCRIPT_NS + $(date +%s%N) - t0))
      if [ "$rc" -eq 0 ]; then
        FINAL=$i
        printf '%s' "$out" > "$OUT/detect_output"
        break
      fi
    fi
  done
  if [ "$FINAL" -lt 0 ]; then
    echo "None of the buildpacks detected a compatible application. Tried: ${tried[*]}"
    fail "NoAppDetectedError" "An app was not successfully detected by any available buildpack"
  fi
fi
FINAL_NAME="$(name_of "$FINAL")"
echo "-----> Using buildpack $FINAL_NAME"
printf '%s' "$FINAL_NAME" > "$OUT/detected_buildpack"
printf '%s' "$FINAL" > "$OUT/buildpack_index"

for i in "${SUPPLIES[@]}"; do
  bp="$BPS/$i"
  mkdir -p "$DEPS_DIR/$i"
  [ -x "$bp/bin/supply" ] || fail "BuildpackCompileFailed" "buildpack $(name_of "$i") has no bin/supply but is not last"
  echo "-----> Supplying with $(name_of "$i")"
  timed run_script "$bp/bin/supply" "$BUILD_DIR" "$CACHE_DIR" "$DEPS_DIR" "$i"
  code=$?
  [ "$code" -eq 0 ] || fail "BuildpackCompileFailed" "App staging failed in the buildpack compile phase: $(name_of "$i") supply exited with $code: $(last_lines)"
done

bp="$BPS/$FINAL"
mkdir -p "$DEPS_DIR/$FINAL" "$BUILD_DIR/.profile.d"
if [ -x "$bp/bin/finalize" ]; then
  if [ -x "$bp/bin/supply" ]; then
    timed run_script "$bp/bin/supply" "$BUILD_DIR" "$CACHE_DIR" "$DEPS_DIR" "$FINAL"
    code=$?
    [ "$code" -eq 0 ] || fail "BuildpackCompileFailed" "App staging failed in the buildpack compile phase: $FINAL_NAME supply exited with $code: $(last_lines)"
  fi
  timed run_script "$bp/bin/finalize" "$BUILD_DIR" "$CACHE_DIR" "$DEPS_DIR" "$FINAL" "$BUILD_DIR/.profile.d"
  code=$?
  phase=finalize
elif [ -x "$bp/bin/compile" ]; then
  # CF v2 compile takes 2 arguments, Heroku's takes ENV_DIR as a third; both accept 3.
  timed run_script "$bp/bin/compile" "$BUILD_DIR" "$CACHE_DIR" "$ENV_DIR"
  code=$?
  phase=compile
else
  fail "BuildpackCompileFailed" "buildpack $FINAL_NAME has neither bin/finalize nor bin/compile"
fi
[ "$code" -eq 0 ] || fail "BuildpackCompileFailed" "App staging failed in the buildpack compile phase: $FINAL_NAME $phase exited with $code: $(last_lines)"

if [ -x "$bp/bin/release" ]; then
  if ! timed "$bp/bin/release" "$BUILD_DIR" > "$OUT/release.yml" 2> "$TAIL"; then
    cat "$TAIL" >&2
    fail "BuildpackReleaseFailed" "App staging failed in the buildpack release phase: $FINAL_NAME: $(last_lines)"
  fi
else
  : > "$OUT/release.yml"
fi
rm -rf "$ENV_DIR" "$TAIL"
exit 0
