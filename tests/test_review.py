"""Review and CI: changed-only plans, --tenant filters, markdown and JSON plans from the CLI."""

from __future__ import annotations

import json
import os
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
    # A renamed file is read as without --changed-since: here it says another tenant's name.
    assert result.code == 1 and "but the file is named acme-sverige.yaml" in result.err, result.err
    bad = cli("plan", "--changed-since", "no-such-ref")
    assert bad.code == 1 and "--changed-since 'no-such-ref': no such commit" in bad.err


def _committed(cli: Cli) -> str:
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "base")
    return git(cli.root, "rev-parse", "HEAD").strip()


def _planned(cli: Cli, base: str, *paths: str, cwd: Path | None = None) -> list[str]:
    result = cli("plan", *paths, "--format", "json", "--changed-since", base, cwd=cwd)
    assert result.code == 0, result.err
    return [f"{t['customer']}/{t['tenant']}" for t in json.loads(result.out)["tenants"]]


def test_changed_since_plans_a_file_git_pairs_as_a_rename(cli: Cli) -> None:
    """git diff -M pairs a removed file with a similar new one (a new tenant beside a retired
    one, a move, .yaml to .yml): such files were left out of the plan ("renamed ... not planned
    here", exit 0), and apply on merge created and deleted what no reviewed plan showed."""
    seeded(cli)
    base = _committed(cli)
    git(cli.root, "mv", "tenants/acme/acme-norway.yaml", "tenants/acme/acme-norway.yml")
    cli.write("tenants/acme/acme-norway.yml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    git(cli.root, "commit", "-qam", "rename and edit")
    assert _planned(cli, base) == ["acme/acme-norway"]
    plan = cli("plan", "--changed-since", base, "--detailed-exitcode")
    assert plan.code == 2 and "to update" in plan.out, plan.both


def test_changed_since_plans_a_file_git_is_told_not_to_look_at(cli: Cli) -> None:
    """`git update-index --skip-worktree` (or `--assume-unchanged`) makes git diff trust the
    index for a file: edited, --changed-since said "No tenant files changed" (exit 0), and the
    pull request showed no plan for what apply on merge of the same tree would do."""
    seeded(cli)
    base = _committed(cli)
    for flag in ("--skip-worktree", "--assume-unchanged"):
        git(cli.root, "update-index", flag, "tenants/acme/acme-norway.yaml")
        assert _planned(cli, base) == []  # flagged, as committed: unchanged
        cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
        assert git(cli.root, "diff", "--name-only", base) == ""  # what the check relied on
        assert _planned(cli, base) == ["acme/acme-norway"]
        cli.write("tenants/acme/acme-norway.yaml", TENANT)
        git(cli.root, "update-index", flag.replace("--", "--no-"), "tenants/acme/acme-norway.yaml")


def test_changed_since_follows_links_as_the_plan_does(cli: Cli) -> None:
    """tenants/ a link to a folder elsewhere in the repository: git lists the edit under the
    link's target, and --changed-since said "No tenant files changed" (exit 0)."""
    seeded(cli)
    (cli.root / "config").mkdir()
    (cli.root / "tenants").rename(cli.root / "config/tenants")
    (cli.root / "tenants").symlink_to("config/tenants")
    base = _committed(cli)
    cli.write("config/tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    assert _planned(cli, base) == ["acme/acme-norway"]


def test_changed_since_sees_a_link_pointed_elsewhere_from_a_linked_folder(cli: Cli, tmp_path: Path) -> None:
    """PATH through a link (a CI workspace's): a tenant file that is a link pointed at another
    (unchanged) file is a change git lists under the link's own path, from the real top."""
    seeded(cli)
    norway = cli.root / "tenants/acme/acme-norway.yaml"
    cli.write("tenants/acme/versions/one.txt", norway.read_text())
    cli.write("tenants/acme/versions/two.txt", TENANT.replace("[F0001, F0002]", "[F0001]"))
    norway.unlink()
    norway.symlink_to("versions/one.txt")
    base = _committed(cli)
    norway.unlink()
    norway.symlink_to("versions/two.txt")
    alias = tmp_path / "workspace"
    alias.symlink_to(cli.root)
    assert _planned(cli, base, str(alias / "tenants")) == ["acme/acme-norway"]


def test_changed_since_plans_a_file_git_ignores(cli: Cli) -> None:
    """The plan reads an ignored tenant file, and apply applies it: git lists no change for it."""
    seeded(cli)
    cli.write(".gitignore", "tenants/acme/acme-sweden.yaml\n")
    base = _committed(cli)
    cli.write("tenants/acme/acme-sweden.yaml", SWEDEN)
    assert _planned(cli, base) == ["acme/acme-sweden"]


def test_changed_since_reads_the_paths_as_the_plan_does(cli: Cli) -> None:
    """A PATH is found from the current folder, a missing one is an error, a --tenant whose file
    did not change is said to be so (it was "no tenant file declares"), and a file name that is
    not UTF-8 is a problem with its place (it was an internal error)."""
    seeded(cli)
    cli.write("tenants/acme/acme-sweden.yaml", SWEDEN)
    base = _committed(cli)
    cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    assert _planned(cli, base, "acme", cwd=cli.root / "tenants") == ["acme/acme-norway"]
    missing = cli("plan", "tenant/", "--changed-since", base)
    assert missing.code == 1 and "tenant/: no such file or directory" in missing.err, missing.err
    same = cli("plan", "--tenant", "acme/acme-sweden", "--changed-since", base)
    assert same.code == 1
    assert "acme/acme-sweden: tenants/acme/acme-sweden.yaml did not change since" in same.err, same.err
    odd = os.fsdecode(b"tenants/acme/odd\xff.yaml")
    (cli.root / odd).write_text(SWEDEN)
    named = cli("plan", "--changed-since", base)
    assert named.code == 1 and "internal error" not in named.err and "odd" in named.err, named.err


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
