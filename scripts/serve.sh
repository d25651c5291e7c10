#!/usr/bin/env bash
# Serve every HTTP function locally on the bundled models, one functions-framework process each,
# exactly as Cloud Run functions runs them. Each URL is printed once it answers. Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")/.."

FUNCTIONS=(predict_customer_needs predict_market_trend)
# Each function's port, and the variable that sets it.
declare -A PORT_VARIABLES=(
  [predict_customer_needs]=PORT_CUSTOMER_NEEDS
  [predict_market_trend]=PORT_MARKET_TREND
)
declare -A PORTS=(
  [predict_customer_needs]="${PORT_CUSTOMER_NEEDS:-8080}"
  [predict_market_trend]="${PORT_MARKET_TREND:-8081}"
)
HOST=${HOST:-127.0.0.1}
# The first request loads the model, which a slow machine may take a while to do.
START_SECONDS=120

declare -A PIDS=()
stop_servers() {
  if ((${#PIDS[@]} > 0)); then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait
  fi
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "serve.sh: $*" >&2
  exit 1
}

# How to move FUNCTION off PORT, for a message about its port.
another_port() {
  local variable=${PORT_VARIABLES[$1]}
  printf 'set %s to a free port, e.g. %s=%s make serve' "$variable" "$variable" "$(($2 + 10))"
}

check_port() {
  local function=$1 port=${PORTS[$1]} fd
  if [[ ! $port =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); then
    fail "${PORT_VARIABLES[$function]} must be a port number from 1 to 65535, not '$port'"
  fi
  # Something accepts connections there: the server could not listen.
  if { exec {fd}<>"/dev/tcp/$HOST/$port"; } 2>/dev/null; then
    exec {fd}<&-
    fail "port $port on $HOST is already in use, so $function cannot serve there:" \
      "$(another_port "$function" "$port")."
  fi
}

# True once GET / on PORT answers 200: the model card, so the model has loaded.
answers() {
  local port=$1 fd status=''
  { exec {fd}<>"/dev/tcp/$HOST/$port"; } 2>/dev/null || return 1
  printf 'GET / HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$HOST" "$port" >&"$fd"
  IFS= read -r -t 30 status <&"$fd" || true
  exec {fd}<&-
  [[ $status == HTTP/1.?' 200'* ]]
}

# Wait until FUNCTION answers; stop with the reason if its server exits or never answers.
wait_until_answering() {
  local function=$1 port=${PORTS[$1]} deadline=$((SECONDS + START_SECONDS))
  until answers "$port"; do
    if ! kill -0 "${PIDS[$function]}" 2>/dev/null; then
      fail "$function stopped before answering on port $port (its output is above)." \
        "If the port is taken, $(another_port "$function" "$port")."
    fi
    ((SECONDS < deadline)) || fail "$function did not answer on port $port in ${START_SECONDS}s."
    sleep 0.2
  done
}

for function in "${FUNCTIONS[@]}"; do
  check_port "$function"
done
for function in "${FUNCTIONS[@]}"; do
  .venv/bin/functions-framework --target "$function" --host "$HOST" --port "${PORTS[$function]}" &
  PIDS[$function]=$!
done
echo "Starting ${FUNCTIONS[*]}; each URL is printed once it answers."
for function in "${FUNCTIONS[@]}"; do
  wait_until_answering "$function"
  echo "$function: http://$HOST:${PORTS[$function]}/"
done
echo "Serving models from ${MODEL_STORE:-models/}; Ctrl-C to stop."
wait -n "${PIDS[@]}"
