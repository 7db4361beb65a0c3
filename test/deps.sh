#!/usr/bin/env bash
# Installs the Debian packages the tests need, or says how to.
#
# Prometheus backs the metric-gate tests of the release engine; Chromium and
# ChromeDriver drive the dashboard's browser test. As root (or with
# passwordless sudo) this installs them; otherwise it prints the one command to
# run and fails, so `make test` never skips those tests quietly.
set -euo pipefail

pkgs=(prometheus chromium chromium-driver)
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkgs[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing ${missing[*]}" >&2
  bash -c "$install" >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "installing ${missing[*]} with sudo" >&2
  sudo -n bash -c "$install" >/dev/null
else
  echo "the tests need ${missing[*]}; install them with:" >&2
  echo "  sudo bash -c '$install'" >&2
  exit 1
fi
