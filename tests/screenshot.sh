#!/usr/bin/env bash
# Renders the demo report and takes a screenshot of it in headless Chromium:
#   tests/screenshot.sh [OUT_DIR]   (default target/screenshot)
# Simulates a workspace, imports it, reclusters and writes OUT_DIR/report.html (the same path as
# `verbatim demo --no-serve`), then OUT_DIR/report.png (1280 × 3200 px, the top of the report:
# alerts, the impact bar chart and the ranked table). Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/screenshot}"
mkdir -p "$out"
rm -f "$out/verbatim.db"
cargo run --quiet -- --db "$out/verbatim.db" demo --dir "$out" --no-serve
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1280,3200 \
    --screenshot="$out/report.png" "file://$(realpath "$out/report.html")" 2>/dev/null
echo "screenshot: $out/report.png"
