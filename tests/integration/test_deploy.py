"""deploy.sh, run by bash against a recording fake `gcloud` and a fake publish interpreter.

Nothing here reaches Google Cloud. The fakes sit first on PATH, append every call (one JSON
line: program, argv, working directory) to a log, keep what exists in a state file (so a second
run sees what the first one created) and answer describe queries plausibly.
FAKE_GCLOUD_EXISTING=1 reports every resource as existing; FAKE_GCLOUD_FAIL=TEXT fails the calls
whose arguments contain TEXT (only the first FAKE_GCLOUD_FAIL_TIMES of them, when that is set);
FAKE_GCLOUD_PRINT_FOR=TEXT makes the calls whose arguments contain TEXT succeed printing
FAKE_GCLOUD_PRINT (nothing when unset) instead of their answer.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import REPO

DEPLOY = REPO / "deploy.sh"
PROJECT = "acme-marketing"
MODEL_BUCKET = f"{PROJECT}-marketcast-models"
DATA_BUCKET = f"{PROJECT}-marketcast-data"
MODEL_STORE = f"gs://{MODEL_BUCKET}/models"
HTTP_FUNCTIONS = ("predict_customer_needs", "predict_market_trend")
FUNCTIONS = (*HTTP_FUNCTIONS, "score_upload", "retrain_on_upload")
PREDICT_SA = f"serviceAccount:marketcast-predict@{PROJECT}.iam.gserviceaccount.com"
SCORE_SA = f"serviceAccount:marketcast-score@{PROJECT}.iam.gserviceaccount.com"
TRIGGER_SA = f"serviceAccount:marketcast-trigger@{PROJECT}.iam.gserviceaccount.com"
RETRAIN_SA = f"serviceAccount:marketcast-retrain@{PROJECT}.iam.gserviceaccount.com"
RETRAIN_TRIGGER_SA = f"serviceAccount:marketcast-retrain-trigger@{PROJECT}.iam.gserviceaccount.com"
STORAGE_AGENT = "serviceAccount:service-123456789@gs-project-accounts.iam.gserviceaccount.com"

FAKE = r"""
import json, os, sys
from pathlib import Path

program, args = Path(sys.argv[0]).name, sys.argv[1:]
state_file = Path(os.environ["FAKE_STATE"])
state = {"buckets": {}, "accounts": [], "objects": [], "failures": 0}
if state_file.exists():
    state = json.loads(state_file.read_text())
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"program": program, "argv": args, "cwd": os.getcwd()}) + "\n")


def save():
    state_file.write_text(json.dumps(state))


fail_text, fail_times = os.environ.get("FAKE_GCLOUD_FAIL"), os.environ.get("FAKE_GCLOUD_FAIL_TIMES")
if fail_text and fail_text in " ".join(args):
    if fail_times is None or state["failures"] < int(fail_times):
        state["failures"] += 1
        save()
        sys.exit("ERROR: (gcloud) PERMISSION_DENIED: simulated failure")

print_for = os.environ.get("FAKE_GCLOUD_PRINT_FOR")
if print_for and print_for in " ".join(args):
    sys.stdout.write(os.environ.get("FAKE_GCLOUD_PRINT", ""))
    save()
    sys.exit(0)

existing = os.environ.get("FAKE_GCLOUD_EXISTING") == "1"
words = [arg for arg in args if not arg.startswith("-")]
flags = dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)


def found(name, known):
    if name not in known and not existing:
        sys.exit(f"ERROR: (gcloud) NOT_FOUND: {name} does not exist")


if program != "gcloud":  # the publish interpreter: -m models publish NAME --to STORE
    state["objects"].append(f"{args[args.index('--to') + 1]}/{args[3]}/current.json")
elif words[:3] == ["storage", "buckets", "create"]:
    state["buckets"][words[3]] = flags["location"].upper()
elif words[:3] == ["storage", "buckets", "describe"]:
    found(words[3], state["buckets"])
    location = state["buckets"].get(words[3], "US")
    print(location if flags.get("format") == "value(location)" else words[3][5:])
elif words[:3] == ["iam", "service-accounts", "create"]:
    state["accounts"].append(f"{words[3]}@{flags['project']}.iam.gserviceaccount.com")
elif words[:3] == ["iam", "service-accounts", "describe"]:
    found(words[3], state["accounts"])
    print(words[3])
elif words[:3] == ["storage", "objects", "describe"]:
    found(words[3], state["objects"])
    print(words[3])
elif words[:2] == ["storage", "service-agent"]:
    print("service-123456789@gs-project-accounts.iam.gserviceaccount.com")
elif words[:2] == ["functions", "describe"]:
    print(f"https://{words[2].replace('_', '-')}-x7k2q9-uc.a.run.app")
save()
"""


def url_of(function: str) -> str:
    return f"https://{function.replace('_', '-')}-x7k2q9-uc.a.run.app"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def gcloud(self, *prefix: str) -> list[list[str]]:
        """The argv of every gcloud call whose words start with `prefix`."""
        return [
            call["argv"]
            for call in self.calls
            if call["program"] == "gcloud" and call["argv"][: len(prefix)] == list(prefix)
        ]

    def deploy_of(self, function: str) -> list[str]:
        (argv,) = self.gcloud("functions", "deploy", function)
        return argv

    def publishes(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls if call["program"] == "publish-python"]

    def index(self, *prefix: str) -> int:
        """Position of the first call (of any program) whose argv starts with `prefix`."""
        return next(
            i for i, call in enumerate(self.calls) if call["argv"][: len(prefix)] == list(prefix)
        )


class FakeCloud:
    """A tmp dir holding the fakes, their log and their state; `deploy` runs deploy.sh."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        self.log = root / "calls.jsonl"
        self.state = root / "state.json"
        self.home = root / "home"
        self.home.mkdir()
        for name in ("gcloud", "publish-python"):
            fake = self.bin / name
            fake.write_text(f"#!{sys.executable} -S\n{FAKE}")
            fake.chmod(0o755)
        self.python = str(self.bin / "publish-python")
        self.path = f"{self.bin}{os.pathsep}{os.environ['PATH']}"
        # Never the real CLI: the fake must win on PATH.
        assert shutil.which("gcloud", path=self.path) == str(self.bin / "gcloud")

    def deploy(self, *flags: str, project: str | None = PROJECT, **env: str) -> Run:
        arguments = [f"--project={project}"] if project else []
        environment = {
            "PATH": self.path,
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "CLOUDSDK_CONFIG": str(self.home / "gcloud"),
            "FAKE_LOG": str(self.log),
            "FAKE_STATE": str(self.state),
            "PYTHON": self.python,
            "IAM_RETRY_SECONDS": "0",
            **env,
        }
        before = self.calls()
        result = subprocess.run(
            ["bash", str(DEPLOY), *arguments, *flags],
            env=environment,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(result.returncode, result.stdout, result.stderr, self.calls()[len(before) :])

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def flag_values(argv: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{name}=")]


def flag_value(argv: list[str], name: str) -> str:
    (value,) = flag_values(argv, name)
    return value


def env_vars(argv: list[str]) -> dict[str, str]:
    """--set-env-vars, including gcloud's ^DELIM^ form for values that hold commas."""
    value = flag_value(argv, "--set-env-vars")
    delimiter = ","
    if match := re.match(r"\^(.+?)\^", value):
        delimiter, value = match.group(1), value[match.end() :]
    return dict(pair.split("=", 1) for pair in value.split(delimiter))


def condition_of(argv: list[str]) -> str | None:
    """The binding's condition expression; None for an unconditional binding."""
    values = flag_values(argv, "--condition")
    if not values or values == ["None"]:
        return None
    parts = dict(part.split("=", 1) for part in values[0].split(","))
    assert parts["title"], "a conditional binding needs a title"
    return parts["expression"]


Binding = tuple[str, str, str, str | None]


def bindings(run: Run) -> set[Binding]:
    """Every IAM grant: (resource, member, role, condition expression)."""
    granted: set[Binding] = set()
    for argv in run.gcloud():
        words = [arg for arg in argv if not arg.startswith("-")]
        if argv[1:2] == ["add-iam-policy-binding"] or argv[2:3] == ["add-iam-policy-binding"]:
            resource = f"{words[0]}:{words[-1]}"
            role = flag_value(argv, "--role")
        elif argv[:2] == ["functions", "add-invoker-policy-binding"]:
            resource, role = f"function:{words[2]}", "roles/run.invoker"
        else:
            continue
        granted.add((resource, flag_value(argv, "--member"), role, condition_of(argv)))
    return granted


def granted_to(run: Run, member: str) -> set[Binding]:
    return {binding for binding in bindings(run) if binding[1] == member}


def prefix_condition(bucket: str, prefix: str) -> str:
    return f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'


@pytest.fixture
def cloud(tmp_path: Path) -> FakeCloud:
    return FakeCloud(tmp_path)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run with every default, into an empty project."""
    run = FakeCloud(tmp_path_factory.mktemp("cloud")).deploy()
    assert run.returncode == 0, run.stderr
    return run


def test_help_lists_the_settings_and_runs_nothing(cloud: FakeCloud) -> None:
    run = cloud.deploy("--help", project=None)

    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: ./deploy.sh --project PROJECT_ID")
    for flag in (
        "--project", "--region", "--model-bucket", "--data-bucket", "--runtime", "--python",
        "--public", "--invoker", "--ingress", "--cors-origins", "--memory", "--cpu",
        "--concurrency", "--min-instances", "--max-instances", "--timeout", "--upload-timeout",
        "--republish-models", "--dry-run",
    ):  # fmt: skip
        assert re.search(rf"^\s+{flag}\b", run.stdout, re.MULTILINE), flag
    assert run.calls == []


def test_help_names_the_product_as_google_does(cloud: FakeCloud) -> None:
    run = cloud.deploy("--help", project=None)

    assert "Deploys marketcast as Cloud Run functions" in run.stdout
    assert "gcloud functions deploy --gen2" in run.stdout
    assert "Cloud Functions (2nd gen)" not in run.stdout
    assert re.search(r"^\s+--runtime RUNTIME\s+RUNTIME\s+python313\b", run.stdout, re.MULTILINE)


def test_apis_are_enabled_before_anything_else(deployed: Run) -> None:
    first = deployed.calls[0]["argv"]

    assert first[:2] == ["services", "enable"]
    for api in ("cloudfunctions", "run", "cloudbuild", "artifactregistry", "eventarc", "pubsub"):
        assert f"{api}.googleapis.com" in first
    assert flag_value(first, "--project") == PROJECT


def test_buckets_are_created_private_with_uniform_access(deployed: Run) -> None:
    created = deployed.gcloud("storage", "buckets", "create")

    assert sorted(argv[3] for argv in created) == [f"gs://{DATA_BUCKET}", f"gs://{MODEL_BUCKET}"]
    for argv in created:
        assert "--uniform-bucket-level-access" in argv
        assert "--public-access-prevention" in argv
        assert flag_value(argv, "--location") == "us-central1"


def test_each_function_is_deployed_gen2_from_the_repository_root(deployed: Run) -> None:
    for function in FUNCTIONS:
        argv = deployed.deploy_of(function)

        assert "--gen2" in argv
        assert flag_value(argv, "--entry-point") == function
        assert flag_value(argv, "--runtime") == "python313"
        assert flag_value(argv, "--source") == "."
        assert flag_value(argv, "--region") == "us-central1"
        assert flag_value(argv, "--project") == PROJECT
    deploy_dirs = {
        call["cwd"] for call in deployed.calls if call["argv"][:2] == ["functions", "deploy"]
    }
    assert deploy_dirs == {str(REPO)}


def test_http_functions_are_private_by_default(deployed: Run) -> None:
    for function in HTTP_FUNCTIONS:
        argv = deployed.deploy_of(function)

        assert "--trigger-http" in argv
        assert "--no-allow-unauthenticated" in argv
        assert "--allow-unauthenticated" not in argv
        assert flag_value(argv, "--ingress-settings") == "all"
        assert f"serviceAccount:{flag_value(argv, '--service-account')}" == PREDICT_SA
    assert not [b for b in bindings(deployed) if b[1] in ("allUsers", "allAuthenticatedUsers")]


@pytest.mark.parametrize(
    ("flags", "env"), [(["--public"], {}), ([], {"ALLOW_UNAUTHENTICATED": "true"})]
)
def test_public_is_an_explicit_opt_in_for_the_http_functions_only(
    cloud: FakeCloud, flags: list[str], env: dict[str, str]
) -> None:
    run = cloud.deploy(*flags, **env)

    assert run.returncode == 0, run.stderr
    for function in HTTP_FUNCTIONS:
        assert "--allow-unauthenticated" in run.deploy_of(function)
        assert "--no-allow-unauthenticated" not in run.deploy_of(function)
    assert "--no-allow-unauthenticated" in run.deploy_of("score_upload")
    assert "--allow-unauthenticated" not in run.deploy_of("score_upload")


def test_http_functions_get_their_environment(deployed: Run) -> None:
    for function in HTTP_FUNCTIONS:
        # One event loop per instance answers small requests while a batch thread works.
        assert flag_value(deployed.deploy_of(function), "--concurrency") == "32"
        assert env_vars(deployed.deploy_of(function)) == {
            "MODEL_STORE": MODEL_STORE,
            "MAX_BODY_BYTES": "10485760",
            "MAX_INSTANCES": "100000",
            "MODEL_REFRESH_SECONDS": "60",
            "STORAGE_TIMEOUT_SECONDS": "5",
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }


def test_upload_function_runs_on_finalized_uploads_with_retries(deployed: Run) -> None:
    argv = deployed.deploy_of("score_upload")

    assert flag_values(argv, "--trigger-event-filters") == [
        "type=google.cloud.storage.object.v1.finalized",
        f"bucket={DATA_BUCKET}",
    ]
    assert flag_value(argv, "--trigger-location") == "us-central1"
    assert "--retry" in argv
    assert "--trigger-http" not in argv
    assert f"serviceAccount:{flag_value(argv, '--trigger-service-account')}" == TRIGGER_SA
    assert f"serviceAccount:{flag_value(argv, '--service-account')}" == SCORE_SA
    assert flag_value(argv, "--ingress-settings") == "internal-only"
    assert flag_value(argv, "--timeout") == "540s"
    assert env_vars(argv) == {
        "MODEL_STORE": MODEL_STORE,
        "MAX_EVENT_AGE_SECONDS": "86400",
        "MODEL_REFRESH_SECONDS": "60",
        "STORAGE_TIMEOUT_SECONDS": "5",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "UPLOAD_STRICT": "false",
    }


def test_upload_strict_reaches_the_upload_function_only(cloud: FakeCloud) -> None:
    run = cloud.deploy("--upload-strict")
    from_environment = cloud.deploy(UPLOAD_STRICT="true")
    refused = cloud.deploy(UPLOAD_STRICT="yes")

    assert run.returncode == 0, run.stderr
    assert env_vars(run.deploy_of("score_upload"))["UPLOAD_STRICT"] == "true"
    for function in (*HTTP_FUNCTIONS, "retrain_on_upload"):
        assert "UPLOAD_STRICT" not in env_vars(run.deploy_of(function)), function
    assert from_environment.returncode == 0, from_environment.stderr
    assert env_vars(from_environment.deploy_of("score_upload"))["UPLOAD_STRICT"] == "true"
    assert refused.returncode == 2
    assert "UPLOAD_STRICT must be true or false, not yes" in refused.stderr
    assert refused.calls == []


def test_settings_from_flags_and_environment_reach_the_functions(cloud: FakeCloud) -> None:
    run = cloud.deploy(
        "--region=europe-west1",
        "--runtime",
        "python312",
        "--ingress=internal-and-gclb",
        "--cors-origins=https://a.example,https://b.example",
        "--memory=2Gi",
        "--concurrency=4",
        "--max-instances=5",
        "--max-rows=500",
        "--build-service-account=builder@acme-marketing.iam.gserviceaccount.com",
        DATA_BUCKET="acme-uploads",
        MAX_EVENT_AGE_SECONDS="600",
    )

    assert run.returncode == 0, run.stderr
    for function in HTTP_FUNCTIONS:
        argv = run.deploy_of(function)
        assert flag_value(argv, "--ingress-settings") == "internal-and-gclb"
        assert (flag_value(argv, "--memory"), flag_value(argv, "--concurrency")) == ("2Gi", "4")
        assert flag_value(argv, "--max-instances") == "5"
        assert env_vars(argv)["CORS_ALLOWED_ORIGINS"] == "https://a.example,https://b.example"
        assert env_vars(argv)["MAX_INSTANCES"] == "500"
    for function in FUNCTIONS:
        argv = run.deploy_of(function)
        assert (flag_value(argv, "--region"), flag_value(argv, "--runtime")) == (
            "europe-west1",
            "python312",
        )
        assert flag_value(argv, "--build-service-account") == (
            f"projects/{PROJECT}/serviceAccounts/builder@acme-marketing.iam.gserviceaccount.com"
        )
    upload = run.deploy_of("score_upload")
    assert "bucket=acme-uploads" in flag_values(upload, "--trigger-event-filters")
    assert flag_value(upload, "--trigger-location") == "europe-west1"
    assert env_vars(upload)["MAX_EVENT_AGE_SECONDS"] == "600"


def test_retrain_function_runs_on_finalized_uploads_with_retries(deployed: Run) -> None:
    argv = deployed.deploy_of("retrain_on_upload")

    assert flag_values(argv, "--trigger-event-filters") == [
        "type=google.cloud.storage.object.v1.finalized",
        f"bucket={DATA_BUCKET}",
    ]
    assert flag_value(argv, "--trigger-location") == "us-central1"
    assert "--retry" in argv
    assert "--no-allow-unauthenticated" in argv
    assert "--trigger-http" not in argv
    assert f"serviceAccount:{flag_value(argv, '--trigger-service-account')}" == RETRAIN_TRIGGER_SA
    assert f"serviceAccount:{flag_value(argv, '--service-account')}" == RETRAIN_SA
    assert flag_value(argv, "--ingress-settings") == "internal-only"
    assert flag_value(argv, "--timeout") == "540s"
    assert flag_value(argv, "--memory") == "4Gi"
    assert flag_value(argv, "--concurrency") == "1"
    assert flag_value(argv, "--max-instances") == "5"
    assert env_vars(argv) == {
        "MODEL_STORE": MODEL_STORE,
        "MAX_EVENT_AGE_SECONDS": "86400",
        "STORAGE_TIMEOUT_SECONDS": "5",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "RETRAIN_JOIN_CURRENT": "false",
        "RETRAIN_MIN_IMPROVEMENT": "0.02",
        "RETRAIN_COVERAGE_TOLERANCE": "0.05",
        "RETRAIN_GROUP_COVERAGE_TOLERANCE": "0.05",
        "RETRAIN_EXCLUDE_FEATURES": "",
        "RETRAIN_MAX_ROWS": "4000000",
    }


def test_retrain_settings_from_flags_and_environment_reach_the_function(
    cloud: FakeCloud,
) -> None:
    run = cloud.deploy(
        "--retrain-join-current",
        "--retrain-min-improvement=0.05",
        "--retrain-coverage-tolerance",
        "0.03",
        "--retrain-group-coverage-tolerance=0.08",
        "--retrain-exclude-features",
        "gender,age",
        "--retrain-max-rows=250000",
        "--retrain-memory=8Gi",
        "--retrain-timeout=300s",
        RETRAIN_MAX_INSTANCES="2",
    )

    assert run.returncode == 0, run.stderr
    argv = run.deploy_of("retrain_on_upload")
    assert (flag_value(argv, "--memory"), flag_value(argv, "--timeout")) == ("8Gi", "300s")
    assert flag_value(argv, "--max-instances") == "2"
    variables = env_vars(argv)
    assert variables["RETRAIN_JOIN_CURRENT"] == "true"
    assert variables["RETRAIN_MIN_IMPROVEMENT"] == "0.05"
    assert variables["RETRAIN_COVERAGE_TOLERANCE"] == "0.03"
    assert variables["RETRAIN_GROUP_COVERAGE_TOLERANCE"] == "0.08"
    assert variables["RETRAIN_EXCLUDE_FEATURES"] == "gender,age"
    assert variables["RETRAIN_MAX_ROWS"] == "250000"
    assert not [name for name in env_vars(run.deploy_of("score_upload")) if "RETRAIN" in name]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--retrain-min-improvement=1"], "RETRAIN_MIN_IMPROVEMENT must be a number from 0"),
        (["--retrain-coverage-tolerance=-0.1"], "RETRAIN_COVERAGE_TOLERANCE must be a number"),
        (
            ["--retrain-group-coverage-tolerance=1.5"],
            "RETRAIN_GROUP_COVERAGE_TOLERANCE must be a number",
        ),
        (["--retrain-exclude-features=gender;age"], "--retrain-exclude-features takes feature"),
        (["--retrain-max-rows=0"], "RETRAIN_MAX_ROWS must be a positive integer"),
        (["--retrain-max-instances=many"], "RETRAIN_MAX_INSTANCES must be a positive integer"),
    ],
)
def test_bad_retrain_settings_are_refused_before_anything_runs(
    cloud: FakeCloud, flags: list[str], message: str
) -> None:
    run = cloud.deploy(*flags)

    assert run.returncode == 2
    assert message in run.stderr
    assert run.calls == []


def test_retrain_account_reads_training_data_and_publishes_models_only(deployed: Run) -> None:
    """Read training/; read and create (never change) retraining/; read models, create new
    versions, and overwrite nothing but current.json."""
    data, models = f"storage:gs://{DATA_BUCKET}", f"storage:gs://{MODEL_BUCKET}"
    versions = prefix_condition(MODEL_BUCKET, "models/")
    pointer = versions + ' && resource.name.endsWith("/current.json")'
    training = prefix_condition(DATA_BUCKET, "training/")
    runs = prefix_condition(DATA_BUCKET, "retraining/")
    assert granted_to(deployed, RETRAIN_SA) == {
        (models, RETRAIN_SA, "roles/storage.objectViewer", None),
        (models, RETRAIN_SA, "roles/storage.objectCreator", versions),
        (models, RETRAIN_SA, "roles/storage.objectUser", pointer),
        (data, RETRAIN_SA, "roles/storage.objectViewer", training),
        (data, RETRAIN_SA, "roles/storage.objectViewer", runs),
        (data, RETRAIN_SA, "roles/storage.objectCreator", runs),
    }


def test_retrain_trigger_identity_can_only_invoke_retrain_on_upload(deployed: Run) -> None:
    assert granted_to(deployed, RETRAIN_TRIGGER_SA) == {
        (f"projects:{PROJECT}", RETRAIN_TRIGGER_SA, "roles/eventarc.eventReceiver", None),
        ("function:retrain_on_upload", RETRAIN_TRIGGER_SA, "roles/run.invoker", None),
    }
    assert deployed.index("functions", "add-invoker-policy-binding", "retrain_on_upload") > (
        deployed.index("functions", "deploy", "retrain_on_upload")
    )


def test_help_lists_the_retrain_settings(cloud: FakeCloud) -> None:
    run = cloud.deploy("--help", project=None)

    for flag in (
        "--retrain-memory", "--retrain-max-instances", "--retrain-timeout",
        "--retrain-join-current", "--retrain-min-improvement", "--retrain-coverage-tolerance",
        "--retrain-group-coverage-tolerance", "--retrain-exclude-features", "--retrain-max-rows",
        "--upload-strict",
    ):  # fmt: skip
        assert re.search(rf"^\s+{flag}\b", run.stdout, re.MULTILINE), flag


def test_prediction_account_can_only_read_the_model_bucket(deployed: Run) -> None:
    assert granted_to(deployed, PREDICT_SA) == {
        (f"storage:gs://{MODEL_BUCKET}", PREDICT_SA, "roles/storage.objectViewer", None)
    }


def test_upload_account_has_per_prefix_access_to_the_data_bucket(deployed: Run) -> None:
    """Read uploads; stage (create, read, delete); read and create results, never change them."""
    data = f"storage:gs://{DATA_BUCKET}"
    assert granted_to(deployed, SCORE_SA) == {
        (f"storage:gs://{MODEL_BUCKET}", SCORE_SA, "roles/storage.objectViewer", None),
        (data, SCORE_SA, "roles/storage.objectViewer", prefix_condition(DATA_BUCKET, "incoming/")),
        (data, SCORE_SA, "roles/storage.objectUser", prefix_condition(DATA_BUCKET, "staging/")),
        (data, SCORE_SA, "roles/storage.objectViewer", prefix_condition(DATA_BUCKET, "results/")),
        (data, SCORE_SA, "roles/storage.objectCreator", prefix_condition(DATA_BUCKET, "results/")),
    }


def test_trigger_identity_can_only_invoke_score_upload(deployed: Run) -> None:
    assert granted_to(deployed, TRIGGER_SA) == {
        (f"projects:{PROJECT}", TRIGGER_SA, "roles/eventarc.eventReceiver", None),
        ("function:score_upload", TRIGGER_SA, "roles/run.invoker", None),
    }
    assert deployed.index("functions", "add-invoker-policy-binding", "score_upload") > (
        deployed.index("functions", "deploy", "score_upload")
    )


def test_storage_service_agent_may_publish_the_trigger_events(deployed: Run) -> None:
    assert granted_to(deployed, STORAGE_AGENT) == {
        (f"projects:{PROJECT}", STORAGE_AGENT, "roles/pubsub.publisher", None)
    }


def test_nobody_gets_broad_or_project_wide_storage_roles(deployed: Run) -> None:
    granted = bindings(deployed)

    assert {member for _, member, _, _ in granted} == {
        PREDICT_SA,
        SCORE_SA,
        TRIGGER_SA,
        RETRAIN_SA,
        RETRAIN_TRIGGER_SA,
        STORAGE_AGENT,
    }
    for resource, _, role, _ in granted:
        assert role not in ("roles/owner", "roles/editor", "roles/storage.admin")
        assert role != "roles/storage.objectAdmin"
        if role.startswith("roles/storage."):
            assert resource.startswith("storage:gs://"), (resource, role)


def test_accounts_exist_before_they_are_granted_anything(deployed: Run) -> None:
    for name in (
        "marketcast-predict",
        "marketcast-score",
        "marketcast-trigger",
        "marketcast-retrain",
        "marketcast-retrain-trigger",
    ):
        created = deployed.index("iam", "service-accounts", "create", name)
        member = f"--member=serviceAccount:{name}@{PROJECT}.iam.gserviceaccount.com"
        granted = [i for i, call in enumerate(deployed.calls) if member in call["argv"]]
        assert granted
        assert created < min(granted)


def test_bundled_models_are_published_with_the_products_command(deployed: Run) -> None:
    assert deployed.publishes() == [
        ["-m", "models", "publish", "customer_needs", "--to", MODEL_STORE],
        ["-m", "models", "publish", "market_trend", "--to", MODEL_STORE],
    ]
    publish_dirs = {call["cwd"] for call in deployed.calls if call["program"] == "publish-python"}
    assert publish_dirs == {str(REPO)}
    last_publish = max(
        i for i, call in enumerate(deployed.calls) if call["program"] == "publish-python"
    )
    assert last_publish < deployed.index("functions", "deploy")


def test_second_run_creates_nothing_and_updates_in_place(cloud: FakeCloud) -> None:
    first = cloud.deploy()

    second = cloud.deploy()

    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    assert len(first.gcloud("storage", "buckets", "create")) == 2
    assert len(first.gcloud("iam", "service-accounts", "create")) == 5
    assert second.gcloud("storage", "buckets", "create") == []
    assert second.gcloud("iam", "service-accounts", "create") == []
    assert second.publishes() == []
    for argv in second.gcloud("storage", "buckets", "update"):
        assert "--uniform-bucket-level-access" in argv
        assert "--public-access-prevention" in argv
    assert len(second.gcloud("storage", "buckets", "update")) == 2
    for function in FUNCTIONS:
        assert second.deploy_of(function) == first.deploy_of(function)
    assert bindings(second) == bindings(first)


def test_resources_made_elsewhere_are_reused_and_live_models_kept(cloud: FakeCloud) -> None:
    kept = cloud.deploy(FAKE_GCLOUD_EXISTING="1")
    republished = cloud.deploy("--republish-models", FAKE_GCLOUD_EXISTING="1")

    assert (kept.returncode, republished.returncode) == (0, 0), kept.stderr
    assert kept.gcloud("storage", "buckets", "create") == []
    assert kept.gcloud("iam", "service-accounts", "create") == []
    assert kept.publishes() == []
    # The existing data bucket is in the US multi-region: the trigger must be there too.
    assert flag_value(kept.deploy_of("score_upload"), "--trigger-location") == "us"
    assert [argv[3] for argv in republished.publishes()] == ["customer_needs", "market_trend"]


def normalized(command: list[str], python: str) -> list[str]:
    """Each cloud has its own publish interpreter, and the storage service agent's project
    number is a placeholder in a dry run."""
    program = "PYTHON" if command[0] == python else command[0]
    return [program] + [
        re.sub(r"service-[A-Z0-9_]+@gs-project", "service-N@gs-project", arg) for arg in command[1:]
    ]


def test_dry_run_prints_every_command_and_runs_none(tmp_path: Path) -> None:
    dry_cloud, real_cloud = FakeCloud(tmp_path / "dry"), FakeCloud(tmp_path / "real")
    flags = ("--invoker=user:ana@example.com", "--cors-origins=https://a.example,https://b.example")

    dry = dry_cloud.deploy("--dry-run", *flags)
    real = real_cloud.deploy(*flags)

    assert (dry.returncode, real.returncode) == (0, 0), dry.stderr
    assert not dry_cloud.log.exists()
    printed = [shlex.split(line[2:]) for line in dry.stdout.splitlines() if line.startswith("+ ")]
    ran = [
        ["gcloud" if call["program"] == "gcloud" else real_cloud.python, *call["argv"]]
        for call in real.calls
    ]
    assert [normalized(command, dry_cloud.python) for command in printed] == [
        normalized(command, real_cloud.python) for command in ran
    ]
    assert "Dry run" in dry.stdout


@pytest.mark.parametrize(
    ("failing", "command"),
    [
        ("storage buckets create", f"gcloud storage buckets create gs://{MODEL_BUCKET}"),
        ("models publish customer_needs", "-m models publish customer_needs"),
        ("functions deploy predict_market_trend", "gcloud functions deploy predict_market_trend"),
    ],
)
def test_a_failing_command_stops_the_script(cloud: FakeCloud, failing: str, command: str) -> None:
    run = cloud.deploy(FAKE_GCLOUD_FAIL=failing)

    assert run.returncode != 0
    assert "FAILED" in run.stderr
    assert command in run.stderr
    assert failing in " ".join(run.calls[-1]["argv"])
    assert [c for c in run.calls if failing in " ".join(c["argv"])] == [run.calls[-1]]
    assert "Deployed to" not in run.stdout


def test_an_iam_grant_is_retried_until_iam_catches_up(cloud: FakeCloud) -> None:
    run = cloud.deploy(FAKE_GCLOUD_FAIL="roles/storage.objectCreator", FAKE_GCLOUD_FAIL_TIMES="2")

    assert run.returncode == 0, run.stderr
    creator = next(
        c["argv"] for c in run.calls if "--role=roles/storage.objectCreator" in c["argv"]
    )
    attempts = [i for i, c in enumerate(run.calls) if c["argv"] == creator]
    assert len(attempts) == 3
    assert attempts == list(range(attempts[0], attempts[0] + 3))


def test_an_iam_grant_that_keeps_failing_stops_the_script(cloud: FakeCloud) -> None:
    run = cloud.deploy(FAKE_GCLOUD_FAIL="roles/storage.objectCreator", IAM_ATTEMPTS="3")

    assert run.returncode != 0
    assert "FAILED" in run.stderr
    assert "--role=roles/storage.objectCreator" in run.stderr
    assert [c["argv"] for c in run.calls[-3:]] == [run.calls[-1]["argv"]] * 3
    assert "--role=roles/storage.objectCreator" in run.calls[-1]["argv"]
    assert run.gcloud("functions", "deploy") == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["--project="], "a project is required"),
        (["--region"], "--region needs a value"),
        (["--ingress", "everywhere"], "--ingress must be all, internal-only or internal-and-gclb"),
        (["--invoker", "allUsers"], "--public"),
        (["--model-bucket=shared-bucket", "--data-bucket=shared-bucket"], "must differ"),
        (["--max-rows=0"], "MAX_INSTANCES must be a positive integer"),
        (["--runtime=nodejs20"], "not a Python runtime"),
    ],
)
def test_bad_settings_are_refused_before_anything_runs(
    cloud: FakeCloud, flags: list[str], message: str
) -> None:
    run = cloud.deploy(*flags)

    assert run.returncode == 2
    assert message in run.stderr
    assert run.calls == []


PROJECT_ID_RULES = (
    "A project id is 6 to 30 characters long: lowercase letters, digits and hyphens, starting "
    "with a letter and not ending with a hyphen"
)


@pytest.mark.parametrize(
    "project",
    [
        "demo",  # too short
        "acme-marketing-analytics-europe",  # 31 characters
        "Acme-Marketing",
        "1acme-marketing",
        "acme-marketing-",
        "acme_marketing",
        "acme marketing",
        "123456789012",  # a project number
    ],
)
def test_a_project_id_gcloud_would_refuse_is_explained_before_any_call(
    cloud: FakeCloud, project: str
) -> None:
    from_flag = cloud.deploy(project=project)
    from_environment = cloud.deploy(project=None, PROJECT_ID=project)

    for run in (from_flag, from_environment):
        assert run.returncode == 2
        assert f"not a project id: '{project}'" in run.stderr
        assert PROJECT_ID_RULES in " ".join(run.stderr.split())
        assert "gcloud projects list" in run.stderr
        assert run.calls == []


@pytest.mark.parametrize("project", ["acme-1", "a" * 29 + "9", "a-b-c-d"])
def test_project_ids_at_the_limits_are_accepted(cloud: FakeCloud, project: str) -> None:
    run = cloud.deploy("--dry-run", project=project)

    assert run.returncode == 0, run.stderr
    assert f"Deploying marketcast to project {project}," in run.stdout


AGENT_EMAIL = "the project's Cloud Storage service agent"
LOCATION = "the data bucket's location"
URL = "the function's URL (https://...)"


@pytest.mark.parametrize(
    ("call", "printed", "shown", "expected"),
    [
        ("storage service-agent", "", "nothing", AGENT_EMAIL),
        ("storage service-agent", "Listed 0 items.\n", "'Listed 0 items.'", AGENT_EMAIL),
        ("storage service-agent", "service-@gs-project-accounts.iam.gserviceaccount.com\n",
         "'service-@gs-project-accounts", AGENT_EMAIL),
        ("--format=value(location)", "", "nothing", LOCATION),
        ("--format=value(location)", "US\nEU\n", "'US EU'", LOCATION),
        ("functions describe predict_market_trend", "", "nothing", URL),
        ("functions describe score_upload", "None\n", "'None'", URL),
        ("functions describe retrain_on_upload", "x" * 300, "'" + "x" * 200 + "'...", URL),
    ],
)  # fmt: skip
def test_an_unexpected_gcloud_answer_stops_the_script_before_it_is_used(
    cloud: FakeCloud, call: str, printed: str, shown: str, expected: str
) -> None:
    run = cloud.deploy(FAKE_GCLOUD_PRINT_FOR=call, FAKE_GCLOUD_PRINT=printed)

    assert run.returncode == 1
    last = run.calls[-1]["argv"]
    assert call in " ".join(last), "the script went on past the answer"
    assert f"STOPPED: this command printed {shown}" in run.stderr
    assert f"where {expected}" in run.stderr
    # The command as announced: arguments such as --format='value(...)' are quoted.
    assert f"  gcloud {' '.join(last)}\n" in run.stderr.replace("'", "")
    assert "Deployed to" not in run.stdout
    for argv in run.gcloud():
        assert not [
            arg for arg in argv if arg in ("--member=serviceAccount:", "--trigger-location=")
        ]


def test_invokers_may_call_the_http_functions_only(cloud: FakeCloud) -> None:
    run = cloud.deploy("--invoker", "user:ana@example.com", INVOKERS="group:analysts@example.com")

    assert run.returncode == 0, run.stderr
    for member in ("user:ana@example.com", "group:analysts@example.com"):
        assert granted_to(run, member) == {
            (f"function:{function}", member, "roles/run.invoker", None)
            for function in HTTP_FUNCTIONS
        }


def test_summary_prints_urls_a_curl_example_and_the_bigquery_sql(deployed: Run) -> None:
    out = deployed.stdout

    for function in FUNCTIONS:
        assert re.search(rf"^\s+{function}\s+{re.escape(url_of(function))}\b", out, re.MULTILINE)
        describe = deployed.gcloud("functions", "describe", function)
        assert flag_values(describe[0], "--format") == ["value(serviceConfig.uri)"]
    assert f"curl -s {url_of('predict_customer_needs')}" in out
    assert '-H "Authorization: Bearer $(gcloud auth print-identity-token)"' in out
    assert deployed.gcloud("auth") == []
    assert "bq mk --connection --connection_type=CLOUD_RESOURCE --location=us-central1" in out
    connection = f"`{PROJECT}.us-central1.marketcast`"
    for signature, function in (
        ("purchase_amount`(age FLOAT64, gender STRING, income FLOAT64)", HTTP_FUNCTIONS[0]),
        ("future_sales`(sales FLOAT64, population FLOAT64, gdp FLOAT64)", HTTP_FUNCTIONS[1]),
    ):
        statement = (
            f"CREATE OR REPLACE FUNCTION `{PROJECT}.marketcast.{signature}\nRETURNS FLOAT64\n"
            f"REMOTE WITH CONNECTION {connection}\n"
            f"OPTIONS (endpoint = '{url_of(function)}/bigquery', max_batching_rows = 500);"
        )
        assert statement in out


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck")

    result = subprocess.run(
        [shellcheck, str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


UPLOADED = (
    "main.py",
    "requirements.txt",
    "functions/http_edge.py",
    "shared/settings.py",
    "models/__main__.py",
    "models/customer_needs/current.json",
    "models/customer_needs/1/model.joblib",
    "models/market_trend/1/metadata.json",
)
LEFT_OUT = (
    "tests/unit/test_schema.py",
    "tests/integration/test_deploy.py",
    "bench/bench_request.py",
    "models/datasets/macrodata.csv",
    "training.csv",
    ".venv/bin/python",
    ".venv-kserve/bin/python",
    "shared/__pycache__/settings.cpython-311.pyc",
    ".pytest_cache/README.md",
    ".ci/run",
    "docs/deploy.md",
    "requirements-dev.txt",
    "deploy.sh",
    "examples/web/index.html",
    "openapi.yaml",
)


def test_gcloudignore_uploads_the_code_and_models_only(tmp_path: Path) -> None:
    # .gcloudignore has .gitignore syntax, so git's own matcher can judge it.
    git = shutil.which("git")
    assert git is not None, "git is needed to check .gcloudignore"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run([git, "init", "-q", str(tmp_path)], env=env, check=True, timeout=30)
    (tmp_path / ".gitignore").write_text((REPO / ".gcloudignore").read_text())
    for path in (*UPLOADED, *LEFT_OUT):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()

    result = subprocess.run(
        [git, "check-ignore", "--no-index", *UPLOADED, *LEFT_OUT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert set(result.stdout.split()) == set(LEFT_OUT), result.stderr
    # git never matches paths inside .git itself, so read that line directly.
    assert ".git/" in (REPO / ".gcloudignore").read_text().splitlines()
