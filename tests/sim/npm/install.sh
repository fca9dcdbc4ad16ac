#!/usr/bin/env bash
# Install the npm clients the simulator is tested against (Claude Code, the TypeScript SDK) into a
# cache folder, so tests/sim/test_sim_node.py and test_sim_claude_code.py can run them offline.
# Only npm packages are fetched, at pinned versions. Idempotent: a second run with the same pins
# does nothing. Target: $ORCHESTRATE_NPM_DIR, else tests/.npm-cache (gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${ORCHESTRATE_NPM_DIR:-$here/../../.npm-cache}"
packages=(
  "@anthropic-ai/claude-code@2.1.332"
  "@anthropic-ai/sdk@1.14.0"
)
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: skipping the npm clients (their tests skip too)" >&2
  exit 0
fi
mkdir -p "$dir"
stamp="$dir/.installed"
want="$(printf '%s\n' "${packages[@]}")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "${packages[@]}"
printf '%s\n' "$want" >"$stamp"
echo "npm clients installed in $dir"
