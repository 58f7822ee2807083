#!/usr/bin/env bash
# One-shot set-up on a fresh machine: Python deps (uv, locked) and a Chromium with fonts.
# Safe to run again: every step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. uv, then the locked environment in .venv.
if ! command -v uv >/dev/null 2>&1; then
  say "installing uv with pip"
  python3 -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$(python3 -m site --user-base)/bin/uv")
stamp=.venv/.posterflow-synced
if [ ! -f "$stamp" ] || [ uv.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "syncing Python environment (.venv) from uv.lock"
  "$UV" sync --frozen --extra local --quiet
  touch "$stamp"
fi

# 2. A Chromium for the render engine: Playwright's own browser if installed, else the
#    system one, else Debian's package (as root), else Playwright's download.
has_playwright_browser() {
  .venv/bin/python - <<'PY' 2>/dev/null
import os, sys
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    sys.exit(0 if os.path.exists(p.chromium.executable_path) else 1)
PY
}
want_fonts="fonts-noto-color-emoji fonts-noto-cjk fonts-dejavu-core fonts-liberation"
if [ -n "${POSTERFLOW_CHROMIUM:-}" ] && [ -x "${POSTERFLOW_CHROMIUM}" ]; then
  say "Chromium: ${POSTERFLOW_CHROMIUM} (POSTERFLOW_CHROMIUM)"
elif command -v chromium >/dev/null 2>&1; then
  say "Chromium: $(command -v chromium)"
elif has_playwright_browser; then
  say "Chromium: Playwright's bundled browser"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Debian's chromium and fonts (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium $want_fonts >/dev/null
elif .venv/bin/playwright install chromium; then
  say "Chromium: installed with 'playwright install chromium'"
else
  echo "setup: no Chromium found and none could be installed." >&2
  echo "       Install Debian's 'chromium' package, or set POSTERFLOW_CHROMIUM to a Chromium binary." >&2
  exit 1
fi

# Fonts so emoji and CJK text never render as boxes (best effort when not root).
if command -v fc-list >/dev/null 2>&1 && ! fc-list | grep -qi "Noto Color Emoji"; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing emoji/CJK fonts (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $want_fonts >/dev/null
  else
    say "warning: Noto Color Emoji not found; emoji may render as boxes"
  fi
fi
