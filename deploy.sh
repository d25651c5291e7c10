#!/usr/bin/env bash
# Deploy marketcast to a Google Cloud project as Cloud Run functions (`gcloud functions deploy
# --gen2`): APIs, buckets, one service account per role with least privilege, the bundled models,
# and every function.
# Safe to run again: it creates what is missing and updates the rest in place.
# `./deploy.sh --help` lists every setting; `--dry-run` prints the commands and runs none.
set -Eeuo pipefail

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
  echo "deploy.sh: needs bash 4.4 or newer (this is $BASH_VERSION)" >&2
  exit 1
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HTTP_FUNCTIONS=(predict_customer_needs predict_market_trend)
UPLOAD_FUNCTION=score_upload
# What score_upload may do in the data bucket, "ROLE PREFIX", each on objects under PREFIX only:
# read uploads; write, read back and delete its own staging objects; then copy them to results/,
# which it may read (to see finished work) and create in, but never overwrite or delete.
UPLOAD_DATA_GRANTS=(
  "roles/storage.objectViewer incoming/"
  "roles/storage.objectUser staging/"
  "roles/storage.objectViewer results/"
  "roles/storage.objectCreator results/"
)
RETRAIN_FUNCTION=retrain_on_upload
# What retrain_on_upload may do in the data bucket, "ROLE PREFIX" as above: read training data;
# read and create (never overwrite or delete) its claims and reports under retraining/.
RETRAIN_DATA_GRANTS=(
  "roles/storage.objectViewer training/"
  "roles/storage.objectViewer retraining/"
  "roles/storage.objectCreator retraining/"
)
MODELS=(customer_needs market_trend)
APIS=(
  cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com
  storage.googleapis.com iam.googleapis.com logging.googleapis.com
)

usage() {
  cat <<'EOF'
Usage: ./deploy.sh --project PROJECT_ID [options]

Deploys marketcast as Cloud Run functions (formerly Cloud Functions 2nd gen, deployed with
`gcloud functions deploy --gen2`) in one Google Cloud project: enables the APIs, creates the model
and data buckets and one service account per role, publishes the bundled models, deploys every
function and prints how to call them. Running it again updates in place.

Every option can also be set with the environment variable shown; a flag wins over it.

  flag                           variable                default
  --project ID                   PROJECT_ID              (required) the project's id: 6 to 30
                                 lowercase letters, digits and hyphens, starting with a
                                 letter (gcloud projects list shows it)
  --region REGION                REGION                  us-central1
  --model-bucket NAME            MODEL_BUCKET            PROJECT_ID-marketcast-models
  --data-bucket NAME             DATA_BUCKET             PROJECT_ID-marketcast-data
  --runtime RUNTIME              RUNTIME                 python313 (a Cloud Run functions
                                 Python runtime id)
  --python COMMAND               PYTHON                  .venv/bin/python, else python3
                                 (runs `python -m models publish`)
  --republish-models             REPUBLISH_MODELS=true
                                 publish the bundled models even over a live one (by
                                 default only models not yet published are published)

HTTP functions (predict_customer_needs, predict_market_trend):
  --public                       ALLOW_UNAUTHENTICATED=true
                                 anyone may call them; without it only callers with
                                 roles/run.invoker can (private)
  --invoker MEMBER               INVOKERS (comma-separated)
                                 grant roles/run.invoker on both, e.g. user:ana@example.com,
                                 group:analysts@example.com; repeatable
  --ingress SETTING              INGRESS                 all
                                 all, internal-only or internal-and-gclb
  --cors-origins ORIGINS         CORS_ALLOWED_ORIGINS    none (comma-separated; * for any)
  --memory SIZE                  FUNCTION_MEMORY         1Gi
  --cpu CPUS                     FUNCTION_CPU            1 (concurrency above 1 needs 1 or more)
  --concurrency N                FUNCTION_CONCURRENCY    32 requests per instance (HTTP)
  --min-instances N              MIN_FUNCTION_INSTANCES  0
  --max-instances N              MAX_FUNCTION_INSTANCES  20
  --timeout DURATION             FUNCTION_TIMEOUT        60s
  --max-body-bytes N             MAX_BODY_BYTES          10485760
  --max-rows N                   MAX_INSTANCES           100000 (rows in one request)
  --model-refresh-seconds N      MODEL_REFRESH_SECONDS   60 (score_upload too)
  --storage-timeout-seconds N    STORAGE_TIMEOUT_SECONDS 5 (the event functions too)

Upload scoring function (score_upload; private, internal-only ingress):
  --upload-memory SIZE           UPLOAD_MEMORY           2Gi
  --upload-max-instances N       UPLOAD_MAX_INSTANCES    10
  --upload-timeout DURATION      UPLOAD_TIMEOUT          540s
  --max-event-age-seconds N      MAX_EVENT_AGE_SECONDS   86400 (older events are dropped;
                                 retrain_on_upload too)
  --upload-strict                UPLOAD_STRICT=true
                                 reject rows outside the training range instead of flagging them

Retraining function (retrain_on_upload; private, internal-only ingress):
  --retrain-memory SIZE          RETRAIN_MEMORY          4Gi
  --retrain-max-instances N      RETRAIN_MAX_INSTANCES   5 (trainings at the same time)
  --retrain-timeout DURATION     RETRAIN_TIMEOUT         540s
  --retrain-join-current         RETRAIN_JOIN_CURRENT=true
                                 train on the upload plus the current model's training data
  --retrain-min-improvement X    RETRAIN_MIN_IMPROVEMENT 0.02 (held-out RMSE must fall by 2%)
  --retrain-coverage-tolerance X RETRAIN_COVERAGE_TOLERANCE 0.05 (90% intervals: 85% to 95%)
  --retrain-group-coverage-tolerance X
                                 RETRAIN_GROUP_COVERAGE_TOLERANCE 0.05 (worst decile or
                                 category: at least 85%)
  --retrain-exclude-features A,B RETRAIN_EXCLUDE_FEATURES none (features models must not use)
  --retrain-max-rows N           RETRAIN_MAX_ROWS        4000000 (data lines per run)

BigQuery (only used in the printed SQL):
  --bq-dataset NAME              BQ_DATASET              marketcast
  --bq-connection NAME           BQ_CONNECTION           marketcast
  --bq-location LOCATION         BQ_LOCATION             the region
  --bq-max-batching-rows N       BQ_MAX_BATCHING_ROWS    500

Other:
  --build-service-account EMAIL  BUILD_SERVICE_ACCOUNT   Cloud Build's default
  --dry-run                      DRY_RUN=true            print every command, run none
  -h, --help                     show this help

IAM changes right after an account is created can fail until they propagate: they are tried
IAM_ATTEMPTS times (5), waiting IAM_RETRY_SECONDS (10) longer each time.
EOF
}

# Flags that take a value, and the variable each one sets.
declare -A FLAG_VARIABLES=(
  [--project]=PROJECT_ID [--region]=REGION [--model-bucket]=MODEL_BUCKET
  [--data-bucket]=DATA_BUCKET [--runtime]=RUNTIME [--python]=PYTHON [--ingress]=INGRESS
  [--cors-origins]=CORS_ALLOWED_ORIGINS [--memory]=FUNCTION_MEMORY [--cpu]=FUNCTION_CPU
  [--concurrency]=FUNCTION_CONCURRENCY [--min-instances]=MIN_FUNCTION_INSTANCES
  [--max-instances]=MAX_FUNCTION_INSTANCES [--timeout]=FUNCTION_TIMEOUT
  [--max-body-bytes]=MAX_BODY_BYTES [--max-rows]=MAX_INSTANCES
  [--model-refresh-seconds]=MODEL_REFRESH_SECONDS
  [--storage-timeout-seconds]=STORAGE_TIMEOUT_SECONDS [--upload-memory]=UPLOAD_MEMORY
  [--upload-max-instances]=UPLOAD_MAX_INSTANCES [--upload-timeout]=UPLOAD_TIMEOUT
  [--max-event-age-seconds]=MAX_EVENT_AGE_SECONDS [--retrain-memory]=RETRAIN_MEMORY
  [--retrain-max-instances]=RETRAIN_MAX_INSTANCES [--retrain-timeout]=RETRAIN_TIMEOUT
  [--retrain-min-improvement]=RETRAIN_MIN_IMPROVEMENT
  [--retrain-coverage-tolerance]=RETRAIN_COVERAGE_TOLERANCE
  [--retrain-group-coverage-tolerance]=RETRAIN_GROUP_COVERAGE_TOLERANCE
  [--retrain-exclude-features]=RETRAIN_EXCLUDE_FEATURES
  [--retrain-max-rows]=RETRAIN_MAX_ROWS [--bq-dataset]=BQ_DATASET
  [--bq-connection]=BQ_CONNECTION [--bq-location]=BQ_LOCATION
  [--bq-max-batching-rows]=BQ_MAX_BATCHING_ROWS
  [--build-service-account]=BUILD_SERVICE_ACCOUNT
)

usage_error() {
  echo "deploy.sh: $*" >&2
  echo "Run ./deploy.sh --help for every option." >&2
  exit 2
}

parse_flags() {
  while (($# > 0)); do
    local flag=$1 value='' has_value=false
    if [[ $flag == --*=* ]]; then
      value=${flag#*=} flag=${flag%%=*} has_value=true
    fi
    case $flag in
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=true ;;
      --public) ALLOW_UNAUTHENTICATED=true ;;
      --republish-models) REPUBLISH_MODELS=true ;;
      --retrain-join-current) RETRAIN_JOIN_CURRENT=true ;;
      --upload-strict) UPLOAD_STRICT=true ;;
      *)
        [[ -v "FLAG_VARIABLES[$flag]" || $flag == --invoker ]] || usage_error "unknown option: $flag"
        if [[ $has_value == false ]]; then
          (($# >= 2)) || usage_error "$flag needs a value"
          value=$2
          shift
        fi
        if [[ $flag == --invoker ]]; then
          INVOKERS=${INVOKERS:+$INVOKERS,}$value
        else
          printf -v "${FLAG_VARIABLES[$flag]}" '%s' "$value"
        fi
        ;;
    esac
    shift
  done
}

apply_defaults() {
  : "${PROJECT_ID:=}" "${REGION:=us-central1}" "${RUNTIME:=python313}"
  : "${MODEL_BUCKET:=$PROJECT_ID-marketcast-models}" "${DATA_BUCKET:=$PROJECT_ID-marketcast-data}"
  if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    [[ ! -x $ROOT/.venv/bin/python ]] || PYTHON=.venv/bin/python
  fi
  : "${REPUBLISH_MODELS:=false}" "${ALLOW_UNAUTHENTICATED:=false}" "${INVOKERS:=}"
  : "${INGRESS:=all}" "${CORS_ALLOWED_ORIGINS:=}"
  : "${FUNCTION_MEMORY:=1Gi}" "${FUNCTION_CPU:=1}" "${FUNCTION_CONCURRENCY:=32}"
  : "${MIN_FUNCTION_INSTANCES:=0}" "${MAX_FUNCTION_INSTANCES:=20}" "${FUNCTION_TIMEOUT:=60s}"
  : "${MAX_BODY_BYTES:=10485760}" "${MAX_INSTANCES:=100000}"
  : "${MODEL_REFRESH_SECONDS:=60}" "${STORAGE_TIMEOUT_SECONDS:=5}"
  : "${UPLOAD_MEMORY:=2Gi}" "${UPLOAD_MAX_INSTANCES:=10}" "${UPLOAD_TIMEOUT:=540s}"
  : "${MAX_EVENT_AGE_SECONDS:=86400}" "${UPLOAD_STRICT:=false}"
  : "${RETRAIN_MEMORY:=4Gi}" "${RETRAIN_MAX_INSTANCES:=5}" "${RETRAIN_TIMEOUT:=540s}"
  : "${RETRAIN_JOIN_CURRENT:=false}" "${RETRAIN_MIN_IMPROVEMENT:=0.02}"
  : "${RETRAIN_COVERAGE_TOLERANCE:=0.05}" "${RETRAIN_MAX_ROWS:=4000000}"
  : "${RETRAIN_GROUP_COVERAGE_TOLERANCE:=0.05}" "${RETRAIN_EXCLUDE_FEATURES:=}"
  : "${BQ_DATASET:=marketcast}" "${BQ_CONNECTION:=marketcast}" "${BQ_LOCATION:=$REGION}"
  : "${BQ_MAX_BATCHING_ROWS:=500}" "${BUILD_SERVICE_ACCOUNT:=}"
  : "${DRY_RUN:=false}" "${IAM_ATTEMPTS:=5}" "${IAM_RETRY_SECONDS:=10}"
}

validate() {
  [[ -n $PROJECT_ID ]] || usage_error "a project is required: --project PROJECT_ID (or PROJECT_ID=...)"
  [[ $PROJECT_ID =~ ^[a-z][-a-z0-9]{4,28}[a-z0-9]$ ]] ||
    usage_error "not a project id: '$PROJECT_ID'. A project id is 6 to 30 characters long:" \
      "lowercase letters, digits and hyphens, starting with a letter and not ending with a" \
      "hyphen (e.g. acme-marketing). It is the id, not the project's name or number:" \
      "gcloud projects list shows it."
  [[ $REGION =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || usage_error "not a region: $REGION"
  local bucket
  for bucket in "$MODEL_BUCKET" "$DATA_BUCKET"; do
    [[ $bucket =~ ^[a-z0-9][-_.a-z0-9]{1,61}[a-z0-9]$ ]] || usage_error "not a bucket name: $bucket"
  done
  # The prediction functions may read the whole model bucket, so uploads must live elsewhere.
  [[ $MODEL_BUCKET != "$DATA_BUCKET" ]] || usage_error "the model and data buckets must differ"
  [[ $RUNTIME =~ ^python3[0-9]+$ ]] || usage_error "not a Python runtime: $RUNTIME (e.g. python313)"
  [[ $INGRESS =~ ^(all|internal-only|internal-and-gclb)$ ]] ||
    usage_error "--ingress must be all, internal-only or internal-and-gclb, not $INGRESS"
  local name
  for name in DRY_RUN ALLOW_UNAUTHENTICATED REPUBLISH_MODELS RETRAIN_JOIN_CURRENT UPLOAD_STRICT; do
    [[ ${!name} =~ ^(true|false)$ ]] || usage_error "$name must be true or false, not ${!name}"
  done
  for name in FUNCTION_CONCURRENCY MAX_FUNCTION_INSTANCES MAX_BODY_BYTES MAX_INSTANCES \
    UPLOAD_MAX_INSTANCES MAX_EVENT_AGE_SECONDS BQ_MAX_BATCHING_ROWS IAM_ATTEMPTS \
    RETRAIN_MAX_INSTANCES RETRAIN_MAX_ROWS; do
    [[ ${!name} =~ ^[1-9][0-9]*$ ]] || usage_error "$name must be a positive integer, not ${!name}"
  done
  for name in MIN_FUNCTION_INSTANCES IAM_RETRY_SECONDS; do
    [[ ${!name} =~ ^[0-9]+$ ]] || usage_error "$name must be a whole number, not ${!name}"
  done
  for name in MODEL_REFRESH_SECONDS STORAGE_TIMEOUT_SECONDS; do
    [[ ${!name} =~ ^[0-9]*\.?[0-9]+$ && ! ${!name} =~ ^[0.]+$ ]] ||
      usage_error "$name must be a positive number, not ${!name}"
  done
  for name in RETRAIN_MIN_IMPROVEMENT RETRAIN_COVERAGE_TOLERANCE RETRAIN_GROUP_COVERAGE_TOLERANCE; do
    [[ ${!name} =~ ^0*(\.[0-9]*)?$ && ${!name} =~ [0-9] ]] ||
      usage_error "$name must be a number from 0 to below 1, not ${!name}"
  done
  [[ $RETRAIN_EXCLUDE_FEATURES =~ ^[A-Za-z0-9_,]*$ ]] ||
    usage_error "--retrain-exclude-features takes feature names separated by commas, not $RETRAIN_EXCLUDE_FEATURES"
  # `|` separates the variables in --set-env-vars (commas may appear in CORS origins).
  [[ $CORS_ALLOWED_ORIGINS != *'|'* ]] || usage_error "CORS origins cannot contain |"
  local member
  IFS=, read -ra INVOKER_MEMBERS <<<"${INVOKERS// /}"
  for member in "${INVOKER_MEMBERS[@]}"; do
    [[ $member =~ ^(user|group|serviceAccount|domain|principal|principalSet): ]] ||
      usage_error "--invoker takes user:, group:, serviceAccount: or domain: members, not $member" \
        "(use --public to let anyone call the functions)"
  done
}

# ---- running commands --------------------------------------------------------------------

CURRENT_COMMAND=''

on_error() {
  local status=$1 command=$2
  # Inside run/capture the failing command is "$@"; name the real one.
  [[ $command != '"$@"' ]] || command=$CURRENT_COMMAND
  {
    echo
    echo "deploy.sh: FAILED with exit status $status:"
    echo "  $command"
    echo "Nothing after it ran. Fix the cause and run deploy.sh again: every step is safe to repeat."
  } >&2
  exit "$status"
}
trap 'on_error "$?" "$BASH_COMMAND"' ERR

# The command as one line that can be pasted into a shell.
quoted() {
  local arg safe='^[A-Za-z0-9_./:=@,+%-]+$' quote=\'\\\'\' words=()
  for arg in "$@"; do
    if [[ $arg =~ $safe ]]; then words+=("$arg"); else words+=("'${arg//\'/$quote}'"); fi
  done
  printf '%s' "${words[*]}"
}

announce() {
  CURRENT_COMMAND=$(quoted "$@")
  printf '+ %s\n' "$CURRENT_COMMAND"
}

# Print a command, then run it (not in a dry run). Its status is the function's status.
run() {
  announce "$@"
  if [[ $DRY_RUN == true ]]; then return 0; fi
  "$@"
}

# capture NAME PLACEHOLDER PATTERN EXPECTED COMMAND...: NAME gets the command's output (PLACEHOLDER
# in a dry run). An output that PATTERN does not match stops the script: EXPECTED says what the
# output should have been.
capture() {
  local name=$1 placeholder=$2 pattern=$3 expected=$4 output
  shift 4
  announce "$@"
  if [[ $DRY_RUN == true ]]; then
    printf -v "$name" '%s' "$placeholder"
    return 0
  fi
  "$@" >"$CAPTURED"
  output=$(<"$CAPTURED")
  [[ $output =~ $pattern ]] || unexpected_output "$output" "$expected"
  printf -v "$name" '%s' "$output"
}

# The command succeeded but its output is not what the next steps need: using it would build
# wrong commands (a member serviceAccount:, an empty URL), so stop here.
unexpected_output() {
  local output=${1//$'\n'/ } expected=$2 printed='nothing'
  if [[ -n $output ]]; then
    printed="'${output:0:200}'"
    ((${#output} <= 200)) || printed+='...'
  fi
  {
    echo
    echo "deploy.sh: STOPPED: this command printed $printed, where $expected was expected:"
    echo "  $CURRENT_COMMAND"
    echo "Nothing after it ran. Run it yourself to see why (the account, the project, gcloud's"
    echo "version), then run deploy.sh again: every step is safe to repeat."
  } >&2
  exit 1
}

# A describe command: true when the resource is there. A dry run assumes it is missing.
exists() {
  announce "$@"
  if [[ $DRY_RUN == true ]]; then
    echo "  (dry run: assuming it does not exist)"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# IAM bindings on accounts created moments ago can fail until IAM catches up: try again.
grant() {
  local attempt
  for ((attempt = 1; attempt < IAM_ATTEMPTS; attempt++)); do
    if run "$@"; then return 0; fi
    echo "  IAM may not have caught up yet; trying again in $((IAM_RETRY_SECONDS * attempt))s" >&2
    sleep "$((IAM_RETRY_SECONDS * attempt))"
  done
  run "$@"
}

step() {
  printf '\n==> %s\n' "$*"
}

# ---- the steps -----------------------------------------------------------------------------

account_email() {
  printf '%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT_ID"
}

enable_apis() {
  step "Enabling the APIs"
  run gcloud services enable "${APIS[@]}" --project="$PROJECT_ID"
}

ensure_bucket() {
  local url="gs://$1"
  if exists gcloud storage buckets describe "$url" --project="$PROJECT_ID" --format='value(name)'; then
    echo "  $url exists; enforcing uniform bucket-level access and public access prevention"
    run gcloud storage buckets update "$url" --project="$PROJECT_ID" \
      --uniform-bucket-level-access --public-access-prevention
  else
    run gcloud storage buckets create "$url" --project="$PROJECT_ID" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  fi
}

ensure_service_account() {
  local name=$1 display_name=$2 description=$3
  if exists gcloud iam service-accounts describe "$(account_email "$name")" --project="$PROJECT_ID" \
    --format='value(email)'; then
    echo "  $(account_email "$name") exists"
  else
    run gcloud iam service-accounts create "$name" --project="$PROJECT_ID" \
      --display-name="$display_name" --description="$description"
  fi
}

# grant_on_bucket BUCKET MEMBER ROLE [PREFIX [SUFFIX]]: with a PREFIX, only objects under it;
# with a SUFFIX too, only those whose names end with it.
grant_on_bucket() {
  local bucket=$1 member=$2 role=$3 prefix=${4:-} suffix=${5:-} condition=None
  if [[ -n $prefix ]]; then
    condition="expression=resource.name.startsWith(\"projects/_/buckets/$bucket/objects/$prefix\")"
    if [[ -n $suffix ]]; then
      local named=${suffix#/}
      condition+=" && resource.name.endsWith(\"$suffix\")"
      condition+=",title=${prefix%/}-${named//[^a-z]/-}-only"
      condition+=",description=Objects under $prefix named *$suffix only"
    else
      condition+=",title=${prefix%/}-only,description=Objects under $prefix only"
    fi
  fi
  grant gcloud storage buckets add-iam-policy-binding "gs://$bucket" --project="$PROJECT_ID" \
    --member="$member" --role="$role" --condition="$condition" --format=none
}

grant_on_project() {
  grant gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    --member="$1" --role="$2" --condition=None --format=none
}

grant_invoker() {
  grant gcloud functions add-invoker-policy-binding "$1" --project="$PROJECT_ID" \
    --region="$REGION" --member="$2" --format=none
}

create_buckets_and_accounts() {
  step "Buckets: models in gs://$MODEL_BUCKET, uploads and results in gs://$DATA_BUCKET"
  ensure_bucket "$MODEL_BUCKET"
  ensure_bucket "$DATA_BUCKET"

  step "Service accounts, one per role"
  ensure_service_account marketcast-predict "marketcast predictions" \
    "Runs the HTTP prediction functions: reads the model bucket"
  ensure_service_account marketcast-score "marketcast upload scoring" \
    "Runs score_upload: reads models and incoming/, writes staging/ and results/"
  ensure_service_account marketcast-trigger "marketcast upload trigger" \
    "Identity of the upload trigger: invokes score_upload"
  ensure_service_account marketcast-retrain "marketcast retraining" \
    "Runs retrain_on_upload: reads training/, writes retraining/, publishes model versions"
  ensure_service_account marketcast-retrain-trigger "marketcast retraining trigger" \
    "Identity of the retraining trigger: invokes retrain_on_upload"
}

grant_least_privilege() {
  step "Least-privilege IAM bindings"
  local predict score trigger retrain retrain_trigger storage_agent
  predict="serviceAccount:$(account_email marketcast-predict)"
  score="serviceAccount:$(account_email marketcast-score)"
  trigger="serviceAccount:$(account_email marketcast-trigger)"
  retrain="serviceAccount:$(account_email marketcast-retrain)"
  retrain_trigger="serviceAccount:$(account_email marketcast-retrain-trigger)"
  grant_on_bucket "$MODEL_BUCKET" "$predict" roles/storage.objectViewer
  grant_on_bucket "$MODEL_BUCKET" "$score" roles/storage.objectViewer
  local entry role prefix
  for entry in "${UPLOAD_DATA_GRANTS[@]}"; do
    read -r role prefix <<<"$entry"
    grant_on_bucket "$DATA_BUCKET" "$score" "$role" "$prefix"
  done
  grant_on_project "$trigger" roles/eventarc.eventReceiver
  # retrain_on_upload reads every model; creates new version folders, never changing one; and
  # moves current.json, the one object it may overwrite.
  grant_on_bucket "$MODEL_BUCKET" "$retrain" roles/storage.objectViewer
  grant_on_bucket "$MODEL_BUCKET" "$retrain" roles/storage.objectCreator "$MODEL_PREFIX/"
  grant_on_bucket "$MODEL_BUCKET" "$retrain" roles/storage.objectUser "$MODEL_PREFIX/" \
    /current.json
  for entry in "${RETRAIN_DATA_GRANTS[@]}"; do
    read -r role prefix <<<"$entry"
    grant_on_bucket "$DATA_BUCKET" "$retrain" "$role" "$prefix"
  done
  grant_on_project "$retrain_trigger" roles/eventarc.eventReceiver
  # Cloud Storage triggers publish through Pub/Sub as the project's Cloud Storage service agent.
  capture storage_agent "service-PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com" \
    '^service-[0-9]+@gs-project-accounts\.iam\.gserviceaccount\.com$' \
    "the project's Cloud Storage service agent (service-PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com)" \
    gcloud storage service-agent --project="$PROJECT_ID"
  grant_on_project "serviceAccount:$storage_agent" roles/pubsub.publisher
}

publish_models() {
  step "Publishing the bundled models to $MODEL_STORE"
  local model
  for model in "${MODELS[@]}"; do
    if [[ $REPUBLISH_MODELS == false ]] && exists gcloud storage objects describe \
      "$MODEL_STORE/$model/current.json" --project="$PROJECT_ID" --format='value(name)'; then
      echo "  $model is already published; leaving it (--republish-models publishes it again)"
    else
      if [[ $DRY_RUN == false ]] && ! command -v "$PYTHON" >/dev/null; then
        echo "deploy.sh: $PYTHON not found: make a virtualenv (make serve) or pass --python" >&2
        exit 1
      fi
      run "$PYTHON" -m models publish "$model" --to "$MODEL_STORE"
    fi
  done
}

# One --set-env-vars value; ^|^ makes | the separator so values may hold commas.
env_vars() {
  local IFS='|'
  printf '^|^%s' "$*"
}

deploy_http_function() {
  local name=$1 access=--no-allow-unauthenticated variables
  if [[ $ALLOW_UNAUTHENTICATED == true ]]; then access=--allow-unauthenticated; fi
  variables=(
    "MODEL_STORE=$MODEL_STORE" "MAX_BODY_BYTES=$MAX_BODY_BYTES" "MAX_INSTANCES=$MAX_INSTANCES"
    "MODEL_REFRESH_SECONDS=$MODEL_REFRESH_SECONDS"
    "STORAGE_TIMEOUT_SECONDS=$STORAGE_TIMEOUT_SECONDS" "GOOGLE_CLOUD_PROJECT=$PROJECT_ID"
  )
  if [[ -n $CORS_ALLOWED_ORIGINS ]]; then
    variables+=("CORS_ALLOWED_ORIGINS=$CORS_ALLOWED_ORIGINS")
  fi
  run gcloud functions deploy "$name" --gen2 --project="$PROJECT_ID" --region="$REGION" \
    --runtime="$RUNTIME" --source=. --entry-point="$name" --trigger-http "$access" \
    --service-account="$(account_email marketcast-predict)" --ingress-settings="$INGRESS" \
    --memory="$FUNCTION_MEMORY" --cpu="$FUNCTION_CPU" --concurrency="$FUNCTION_CONCURRENCY" \
    --min-instances="$MIN_FUNCTION_INSTANCES" --max-instances="$MAX_FUNCTION_INSTANCES" \
    --timeout="$FUNCTION_TIMEOUT" --set-env-vars="$(env_vars "${variables[@]}")" \
    "${BUILD_FLAGS[@]}"
}

# A bucket's location as gcloud prints it: a region, dual-region or multi-region (US, NAM4).
LOCATION_PATTERN='^[A-Za-z][-A-Za-z0-9]*[A-Za-z0-9]$'
LOCATION_EXPECTED="the data bucket's location (such as US or EUROPE-WEST1)"

deploy_upload_function() {
  local location
  # The trigger must live where the bucket does (a region, or a multi-region such as us).
  capture location "${REGION^^}" "$LOCATION_PATTERN" "$LOCATION_EXPECTED" \
    gcloud storage buckets describe "gs://$DATA_BUCKET" --project="$PROJECT_ID" \
    --format='value(location)'
  run gcloud functions deploy "$UPLOAD_FUNCTION" --gen2 --project="$PROJECT_ID" \
    --region="$REGION" --runtime="$RUNTIME" --source=. --entry-point="$UPLOAD_FUNCTION" \
    --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
    --trigger-event-filters=bucket="$DATA_BUCKET" --trigger-location="${location,,}" \
    --trigger-service-account="$(account_email marketcast-trigger)" --retry \
    --no-allow-unauthenticated --service-account="$(account_email marketcast-score)" \
    --ingress-settings=internal-only --memory="$UPLOAD_MEMORY" --cpu="$FUNCTION_CPU" \
    --concurrency=1 --max-instances="$UPLOAD_MAX_INSTANCES" --timeout="$UPLOAD_TIMEOUT" \
    --set-env-vars="$(env_vars "MODEL_STORE=$MODEL_STORE" \
      "MAX_EVENT_AGE_SECONDS=$MAX_EVENT_AGE_SECONDS" "MODEL_REFRESH_SECONDS=$MODEL_REFRESH_SECONDS" \
      "STORAGE_TIMEOUT_SECONDS=$STORAGE_TIMEOUT_SECONDS" "GOOGLE_CLOUD_PROJECT=$PROJECT_ID" \
      "UPLOAD_STRICT=$UPLOAD_STRICT")" \
    "${BUILD_FLAGS[@]}"
  # Only the trigger's identity may invoke it, and it may invoke nothing else.
  grant_invoker "$UPLOAD_FUNCTION" "serviceAccount:$(account_email marketcast-trigger)"
}

deploy_retrain_function() {
  local location
  capture location "${REGION^^}" "$LOCATION_PATTERN" "$LOCATION_EXPECTED" \
    gcloud storage buckets describe "gs://$DATA_BUCKET" --project="$PROJECT_ID" \
    --format='value(location)'
  run gcloud functions deploy "$RETRAIN_FUNCTION" --gen2 --project="$PROJECT_ID" \
    --region="$REGION" --runtime="$RUNTIME" --source=. --entry-point="$RETRAIN_FUNCTION" \
    --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
    --trigger-event-filters=bucket="$DATA_BUCKET" --trigger-location="${location,,}" \
    --trigger-service-account="$(account_email marketcast-retrain-trigger)" --retry \
    --no-allow-unauthenticated --service-account="$(account_email marketcast-retrain)" \
    --ingress-settings=internal-only --memory="$RETRAIN_MEMORY" --cpu=1 --concurrency=1 \
    --max-instances="$RETRAIN_MAX_INSTANCES" --timeout="$RETRAIN_TIMEOUT" \
    --set-env-vars="$(env_vars "MODEL_STORE=$MODEL_STORE" \
      "MAX_EVENT_AGE_SECONDS=$MAX_EVENT_AGE_SECONDS" \
      "STORAGE_TIMEOUT_SECONDS=$STORAGE_TIMEOUT_SECONDS" "GOOGLE_CLOUD_PROJECT=$PROJECT_ID" \
      "RETRAIN_JOIN_CURRENT=$RETRAIN_JOIN_CURRENT" \
      "RETRAIN_MIN_IMPROVEMENT=$RETRAIN_MIN_IMPROVEMENT" \
      "RETRAIN_COVERAGE_TOLERANCE=$RETRAIN_COVERAGE_TOLERANCE" \
      "RETRAIN_GROUP_COVERAGE_TOLERANCE=$RETRAIN_GROUP_COVERAGE_TOLERANCE" \
      "RETRAIN_EXCLUDE_FEATURES=$RETRAIN_EXCLUDE_FEATURES" \
      "RETRAIN_MAX_ROWS=$RETRAIN_MAX_ROWS")" \
    "${BUILD_FLAGS[@]}"
  grant_invoker "$RETRAIN_FUNCTION" "serviceAccount:$(account_email marketcast-retrain-trigger)"
}

deploy_functions() {
  BUILD_FLAGS=()
  if [[ -n $BUILD_SERVICE_ACCOUNT ]]; then
    BUILD_FLAGS=("--build-service-account=projects/$PROJECT_ID/serviceAccounts/$BUILD_SERVICE_ACCOUNT")
  fi
  local name member
  for name in "${HTTP_FUNCTIONS[@]}"; do
    step "Deploying $name"
    deploy_http_function "$name"
    for member in "${INVOKER_MEMBERS[@]}"; do
      grant_invoker "$name" "$member"
    done
  done
  step "Deploying $UPLOAD_FUNCTION (on uploads to gs://$DATA_BUCKET)"
  deploy_upload_function
  step "Deploying $RETRAIN_FUNCTION (on training data uploaded to gs://$DATA_BUCKET)"
  deploy_retrain_function
}

declare -A URLS=()

read_urls() {
  step "Function URLs"
  local name
  for name in "${HTTP_FUNCTIONS[@]}" "$UPLOAD_FUNCTION" "$RETRAIN_FUNCTION"; do
    capture "URLS[$name]" "https://URL-OF-$name" '^https://[^[:space:]]+$' \
      "the function's URL (https://...)" gcloud functions describe "$name" \
      --project="$PROJECT_ID" --region="$REGION" --format='value(serviceConfig.uri)'
  done
}

print_summary() {
  local customers=${URLS[predict_customer_needs]} market=${URLS[predict_market_trend]}
  local dataset="$PROJECT_ID.$BQ_DATASET" connection="$PROJECT_ID.$BQ_LOCATION.$BQ_CONNECTION"
  local access="private: callers need roles/run.invoker"
  if [[ $ALLOW_UNAUTHENTICATED == true ]]; then access="public: anyone may call"; fi
  if [[ $DRY_RUN == true ]]; then
    printf '\nDry run: nothing was deployed. A real run ends like this:\n'
  fi
  cat <<EOF

Deployed to $PROJECT_ID ($REGION).

  predict_customer_needs  $customers
  predict_market_trend    $market
  score_upload            ${URLS[$UPLOAD_FUNCTION]}  (internal; called by its trigger only)
  retrain_on_upload       ${URLS[$RETRAIN_FUNCTION]}  (internal; called by its trigger only)

The HTTP functions are $access.
Call one with your identity token:

EOF
  # A quoted here-document: the token command is for the reader's shell, not this one.
  local curl_example
  curl_example=$(
    cat <<'EOF'
  curl -s FUNCTION_URL \
    -H "Authorization: Bearer $(gcloud auth print-identity-token)" \
    -H 'Content-Type: application/json' \
    -d '{"instances": [{"age": 35, "gender": "F", "income": 52000}]}'
EOF
  )
  printf '%s\n' "${curl_example/FUNCTION_URL/$customers}"
  cat <<EOF

Let someone else call them:
  gcloud functions add-invoker-policy-binding predict_customer_needs --project=$PROJECT_ID --region=$REGION --member=user:EMAIL
  (or run deploy.sh again with --invoker user:EMAIL)

Score a file: upload it under incoming/<model>/ and the results appear under results/<model>/:
  gcloud storage cp customers.csv gs://$DATA_BUCKET/incoming/customer_needs/
  gcloud storage ls gs://$DATA_BUCKET/results/customer_needs/

Retrain on labelled data (the features and the target): upload it under training/<model>/;
the run's report.json appears under retraining/<model>/, and a better model goes live:
  gcloud storage cp labelled.csv gs://$DATA_BUCKET/training/customer_needs/
  gcloud storage ls -r gs://$DATA_BUCKET/retraining/customer_needs/

BigQuery remote functions. Create the connection once (BigQuery has no SQL statement for it):
  gcloud services enable bigqueryconnection.googleapis.com --project=$PROJECT_ID
  bq mk --connection --connection_type=CLOUD_RESOURCE --location=$BQ_LOCATION --project_id=$PROJECT_ID $BQ_CONNECTION
  bq show --connection $connection    # its serviceAccountId calls the functions:
  gcloud functions add-invoker-policy-binding predict_customer_needs --project=$PROJECT_ID --region=$REGION --member=serviceAccount:SERVICE_ACCOUNT_ID
  gcloud functions add-invoker-policy-binding predict_market_trend --project=$PROJECT_ID --region=$REGION --member=serviceAccount:SERVICE_ACCOUNT_ID

Then register the functions (bq query --use_legacy_sql=false, or the BigQuery console), each at
its /bigquery path, where every answer, an error too, is in the shape BigQuery reads:

CREATE SCHEMA IF NOT EXISTS \`$dataset\` OPTIONS (location = '$BQ_LOCATION');

CREATE OR REPLACE FUNCTION \`$dataset.purchase_amount\`(age FLOAT64, gender STRING, income FLOAT64)
RETURNS FLOAT64
REMOTE WITH CONNECTION \`$connection\`
OPTIONS (endpoint = '$customers/bigquery', max_batching_rows = $BQ_MAX_BATCHING_ROWS);

CREATE OR REPLACE FUNCTION \`$dataset.future_sales\`(sales FLOAT64, population FLOAT64, gdp FLOAT64)
RETURNS FLOAT64
REMOTE WITH CONNECTION \`$connection\`
OPTIONS (endpoint = '$market/bigquery', max_batching_rows = $BQ_MAX_BATCHING_ROWS);

SELECT \`$dataset.purchase_amount\`(35, 'F', 52000) AS purchase_amount;
EOF
}

main() {
  parse_flags "$@"
  apply_defaults
  validate
  MODEL_PREFIX=models
  MODEL_STORE="gs://$MODEL_BUCKET/$MODEL_PREFIX"
  cd "$ROOT"
  if [[ $DRY_RUN == true ]]; then
    echo "Dry run: printing every command; none is run."
  elif ! command -v gcloud >/dev/null; then
    echo "deploy.sh: gcloud not found; install the Google Cloud CLI first" >&2
    exit 1
  fi
  CAPTURED=$(mktemp)
  trap 'rm -f "$CAPTURED"' EXIT
  # Never stop at a prompt: a script answers with its flags.
  export CLOUDSDK_CORE_DISABLE_PROMPTS=1
  echo "Deploying marketcast to project $PROJECT_ID, region $REGION."

  enable_apis
  create_buckets_and_accounts
  grant_least_privilege
  publish_models
  deploy_functions
  read_urls
  print_summary
}

main "$@"
