#!/usr/bin/env bash
# Debian's headless Chromium, for the test that renders the Snakemake report (tests/test_papers_workflow.py).
#   scripts/chromium.sh install     apt-get install chromium-headless-shell (no recommends), if absent
#   scripts/chromium.sh path        print the browser's path (chromium-headless-shell or chromium)
set -euo pipefail

path() {
    command -v chromium-headless-shell || command -v chromium
}

install() {
    if path >/dev/null; then
        echo "chromium: already installed ($(path))"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null
    echo "chromium: installed ($(path))"
}

case "${1:-}" in
    install) install ;;
    path) path ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
