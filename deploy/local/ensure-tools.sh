#!/usr/bin/env bash
# Make sure the toolchains the local infrastructure and the tests need are present.
set -euo pipefail
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# kcat and jq: the commands of docs/adapters.md, run by tests/e2e/test_adapters_doc.py.
command -v kcat >/dev/null || missing+=(kcat)
command -v jq >/dev/null || missing+=(jq)
# chromium: the survey page's browser test drives it headless with Playwright (no browser
# download); fonts-dejavu-core draws Vietnamese diacritics in its screenshots.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[tools] installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A docker compose client, only to validate deploy/docker-compose.yml in the tests (no
# engine needed). Debian ships compose v1 as `docker-compose`; without recommends, so no
# Docker engine comes along. Not fatal: the compose test skips when no client exists.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  echo "[tools] installing docker-compose from Debian's packages (compose file validation)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; } \
    || echo "[tools] docker-compose not installed: the compose validation test will skip" >&2
fi
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "[tools] Go 1.22+ is required to build FerretDB" >&2; exit 1; }
