#!/usr/bin/env bash
# Installs, idempotently, what the test suite needs on Debian 12: runc, nats-server,
# PostgreSQL, debootstrap, CNI plugins, nftables, nginx and wrk (router benchmark peer),
# rsyslog (syslog drain tests), chromium and chromium-driver (the dashboard's browser test),
# docker-registry, skopeo, umoci, busybox-static and apache2-utils (htpasswd) for the docker
# image tests (a private registry with basic auth, images built and pushed in the test).
# Needs root.
set -euo pipefail
packages=(runc nats-server postgresql debootstrap containernetworking-plugins nftables iproute2
          nginx-light wrk rsyslog ca-certificates curl chromium chromium-driver
          docker-registry skopeo umoci busybox-static apache2-utils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts these on install; the tests start their own on free ports.
for s in nginx nats-server postgresql rsyslog docker-registry; do
  systemctl disable --now "$s" >/dev/null 2>&1 || true
done
