"""Review and CI: changed-only plans, --tenant filters, markdown and JSON plans from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from markdown_it import MarkdownIt

from reconciler.progress import Progress
from tests.conftest import Cli, git
from tests.test_cli import PLAN_SCHEMA, TENANT, seeded

SWEDEN = "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections: []\n"


def test_changed_since_plans_only_changed_tenant_files(cli: Cli) -> None:
    seeded(cli)
    cli.write("tenants/acme/acme-sweden.yaml", SWEDEN)
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "base")
    base = git(cli.root, "rev-parse", "HEAD").strip()
    cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    git(cli.root, "commit", "-qam", "edit norway")
    only = json.loads(cli("plan", "--format", "json", "--changed-since", base).out)
    assert [t["tenant"] for t in only["tenants"]] == ["acme-norway"]
    git(cli.root, "mv", "tenants/acme/acme-sweden.yaml", "tenants/acme/acme-sverige.yaml")
    git(cli.root, "rm", "-q", "tenants/acme/acme-norway.yaml")
    git(cli.root, "commit", "-qm", "rename and delete")
    result = cli("plan", "--changed-since", base)
    assert "tenants/acme/acme-norway.yaml: deleted since" in result.err
    assert "a missing tenant file deletes nothing" in result.err
    assert "tenants/acme/acme-sweden.yaml renamed to tenants/acme/acme-sverige.yaml" in result.err
    assert "not planned here" in result.err
    # Deleted and renamed files are reported, not planned: nothing is left to plan.
    assert result.code == 0 and "No tenant files changed since" in result.err
    assert "Plan: 0 to create, 0 to update, 0 to rename, 0 to adopt, 0 to delete" in result.out
    bad = cli("plan", "--changed-since", "no-such-ref")
    assert bad.code == 1 and "--changed-since 'no-such-ref': no such commit" in bad.err


def test_changed_since_plans_files_edited_and_not_committed_yet(cli: Cli) -> None:
    """A reviewer plans before committing: an edited tracked file was left out (git diff of
    commits only) while a new untracked file was planned."""
    seeded(cli)
    cli.write("tenants/acme/acme-sweden.yaml", SWEDEN)
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "base")
    cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    plan = cli("plan", "--format", "json", "--changed-since", "HEAD", "--detailed-exitcode")
    assert plan.code == 2, plan.both
    assert [t["tenant"] for t in json.loads(plan.out)["tenants"]] == ["acme-norway"]
    git(cli.root, "add", "tenants/acme/acme-norway.yaml")  # staged, not committed: the same
    staged = cli("plan", "--format", "json", "--changed-since", "HEAD")
    assert [t["tenant"] for t in json.loads(staged.out)["tenants"]] == ["acme-norway"]
    git(cli.root, "rm", "-q", "--cached", "tenants/acme/acme-sweden.yaml")
    (cli.root / "tenants/acme/acme-sweden.yaml").unlink()
    deleted = cli("plan", "--changed-since", "HEAD")
    assert "tenants/acme/acme-sweden.yaml: deleted since HEAD" in deleted.err


def test_tenant_filter_on_plan_drift_export(cli: Cli) -> None:
    seeded(cli)
    cli.write("tenants/acme/acme-sweden.yaml", SWEDEN)
    plan = json.loads(cli("plan", "--format", "json", "--tenant", "acme/acme-sweden").out)
    assert [t["tenant"] for t in plan["tenants"]] == ["acme-sweden"]
    drift = cli("drift", "--tenant", "acme/acme-norway", "--format", "json")
    assert drift.code == 0 and [t["tenant"] for t in json.loads(drift.out)["tenants"]] == ["acme-norway"]
    assert cli("drift", "--tenant", "acme/unknown").code == 1
    assert cli("apply", "--tenant", "acme/unknown", "--auto-approve").code == 1
    exported = cli("export", "--tenant", "acme/acme-sweden")
    assert exported.code == 0 and "tenant: acme-sweden" in exported.out
    unknown = cli("export", "--tenant", "acme/acme-denmark")
    assert unknown.code == 1
    assert "the store knows acme/acme-norway, acme/acme-sweden" in unknown.err


def test_markdown_and_json_from_the_cli(cli: Cli) -> None:
    seeded(cli, TENANT.replace("[F0001, F0002]", "[F0001]"))
    md = cli("plan", "--format", "markdown")
    assert md.code == 0 and md.err == ""  # nothing extra on stderr outside a terminal
    tokens = MarkdownIt("commonmark").enable("table").parse(md.out)
    assert tokens[1].content == "osr-reconciler plan"
    assert "deletes budget_flow `Budget 2027` (company `F0002`)" in md.out
    plan = json.loads(cli("plan", "--format", "json").out)
    jsonschema.validate(plan, PLAN_SCHEMA)
    assert plan["format_version"] == 1
    drift = cli("drift", "--format", "markdown")
    assert drift.code == 2 and drift.out.startswith("## osr-reconciler drift")


def test_progress_is_off_outside_a_terminal(monkeypatch: object) -> None:
    assert Progress().enabled is False  # pytest's stderr is not a terminal


def test_pre_commit_hook_validates_files(embedded_cli: Cli) -> None:
    good = embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    bad = embedded_cli.write("tenants/acme/acme-sweden.yaml", SWEDEN.replace("connections", "conections"))
    result = embedded_cli("validate", str(good), str(bad))
    assert result.code == 1
    assert (
        "tenants/acme/acme-sweden.yaml:4:1: unknown key 'conections'; did you mean 'connections'?"
    ) in result.err
    assert not (embedded_cli.root / ".reconciler").exists()
    assert Path(good).exists()
