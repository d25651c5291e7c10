#!/usr/bin/env bash
# Serve every HTTP function locally on the bundled models, one functions-framework process each,
# exactly as Cloud Functions runs them. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A PORTS=(
  [predict_customer_needs]="${PORT_CUSTOMER_NEEDS:-8080}"
  [predict_market_trend]="${PORT_MARKET_TREND:-8081}"
)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait' EXIT INT TERM

for target in predict_customer_needs predict_market_trend; do
  port="${PORTS[$target]}"
  .venv/bin/functions-framework --target "$target" --host "${HOST:-127.0.0.1}" --port "$port" &
  pids+=("$!")
  echo "$target: http://${HOST:-127.0.0.1}:$port/"
done
echo "Serving models from ${MODEL_STORE:-models/}; Ctrl-C to stop."
wait -n "${pids[@]}"
