"""The core loop through the installed console script, on every store of the matrix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from reconciler import store
from tests.conftest import (
    CANARY,
    CANARY_ENV,
    RECONCILER,
    SERVER_URLS,
    TEST_KEY,
    Cli,
    base_env,
    copy_demo,
    private_database,
    require_server,
    reset_server,
)

REPO = Path(__file__).resolve().parent.parent
PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
DEMO_ENV = {
    "OSR_ACME_NO_OSLO": "demo-oslo-pw",
    "OSR_ACME_NO_BERGEN": "demo-bergen-pw",
    "OSR_ACME_SE_STOCKHOLM": "demo-stockholm-pw",
}

LIVE = """\
version: 1
customers:
  - name: acme
    tenants:
      - name: acme-norway
        connections:
          - name: Visma Oslo
            managed: true
            integration: visma-business
            server: SQL01\\VISMA
            database: vbsys
            authentication: sql
            login: osr
            password: {env: OSR_CANARY}
            companies:
              - id: F0001
                reports: [P&L March]
              - id: F0002
                budget_flows: [Budget 2027]
        report_templates:
          - {name: P&L template, connection: Visma Oslo}
      - name: acme-sweden
        connections: []
"""

TENANT = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: Visma Oslo
    integration: visma-business
    server: SQL01\\VISMA
    database: vbsys
    authentication: sql
    login: osr
    password: {env: OSR_CANARY}
    companies: [F0001, F0002]
"""


def seeded(cli: Cli, tenant: str = TENANT, live: str = LIVE) -> None:
    cli.write("live.yaml", live)
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", tenant)


def edit_by_hand(cli: Cli, name: str, **values: object) -> None:
    """Change a live connection the way the portal's UI would: the tool does not know."""
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(store.connections.update().where(store.connections.c.name == name).values(**values))
    finally:
        engine.dispose()


def dump(cli: Cli) -> str:
    result = cli("store", "dump")
    assert result.code == 0, result.err
    return result.out


def plan_json(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict:
    result = cli("plan", "--format", "json", *args, env=env)
    assert result.code == 0, result.err
    obj = json.loads(result.out)
    jsonschema.validate(obj, PLAN_SCHEMA)
    return obj


def test_demo_plan_apply_converges(cli: Cli) -> None:
    copy_demo(cli.root, REPO)
    assert cli("store", "seed", str(REPO / "examples" / "demo-store.yaml")).code == 0
    before = dump(cli)

    refused = cli("apply", env=DEMO_ENV)  # not a terminal, no --auto-approve
    assert refused.code == 1
    assert "--allow-cascade" in refused.err
    refused = cli("apply", "--allow-cascade", env=DEMO_ENV)
    assert refused.code == 1 and "--auto-approve" in refused.err
    assert dump(cli) == before  # nothing written by a run that exits 1

    done = cli("apply", "--auto-approve", "--allow-cascade", env=DEMO_ENV)
    assert done.code == 0, done.err
    assert "Applied 5 action(s); 6 dependent(s) deleted." in done.err

    again = cli("plan", "--detailed-exitcode", env=DEMO_ENV)
    assert again.code == 0, again.out  # converged: the blocked delete is all that remains
    assert "0 to create, 0 to update, 0 to rename, 0 to adopt, 0 to delete" in again.out
    live = yaml.safe_load(dump(cli))
    norway = live["customers"][0]["tenants"][0]
    names = {c["name"]: c for c in norway["connections"]}
    assert "Old NAV" not in names and "Oslo GP" not in names
    assert names["Dynamics GP Oslo"]["companies"] == [{"id": "ACME1", "reports": ["GP trial balance"]}]
    assert names["Hand-made AX"]["managed"] is True
    assert names["Legacy SAP"]["protected"] is True  # blocked, never deleted
    assert names["Consultant sandbox"]["managed"] is False  # unmanaged, never deleted
    assert [c["id"] for c in names["Visma Business Oslo"]["companies"]] == ["F0001"]
    templates = {t["name"]: t["connection"] for t in norway["report_templates"]}
    assert templates["NAV P&L template"] is None  # kept, detached
    assert templates["Group P&L template"] == "Visma Business Oslo"

    history = cli("history", "--tenant", "acme/acme-norway", "--format", "json")
    entries = json.loads(history.out)
    assert sorted(e["action"] for e in entries) == ["adopt", "create", "delete", "rename", "update"]
    assert all(e["actor"] == "tester" for e in entries)
    delete = next(e for e in entries if e["action"] == "delete")
    assert delete["connection"] == "Old NAV" and delete["cascade"] == 4
    # A rename keeps the name it replaced: history told only the new one
    assert {e["action"]: e["previous_name"] for e in entries} == {
        "adopt": None,
        "create": None,
        "delete": None,
        "rename": "Oslo GP",
        "update": None,
    }
    text = cli("history", "--tenant", "acme/acme-norway").out
    assert ' rename "Oslo GP" → "Dynamics GP Oslo"  name\n' in text
    assert ' delete "Old NAV"  -  (4 cascaded)\n' in text


def test_plan_detailed_exitcode_and_json_shape(cli: Cli) -> None:
    seeded(cli, TENANT.replace("[F0001, F0002]", "[F0001]"))
    result = cli.process("plan", "--detailed-exitcode")  # the console script's own exit code
    assert result.code == 2
    obj = plan_json(cli)
    (action,) = obj["tenants"][0]["actions"]
    assert action == {
        "action": "update",
        "connection": "Visma Oslo",
        "reason": "update_because_fields_differ",
        "status": "pending",
        "changes": [{"field": "companies", "before": ["F0001", "F0002"], "after": ["F0001"]}],
        "cascade": [{"kind": "budget_flow", "name": "Budget 2027", "company": "F0002"}],
        "kept": [],
    }
    assert obj["summary"] == {
        "create": 0,
        "update": 1,
        "rename": 0,
        "adopt": 0,
        "delete": 0,
        "cascade": 1,
        "blocked": 0,
    }


def test_plan_without_changes_exits_zero(cli: Cli) -> None:
    seeded(cli)
    result = cli("plan", "--detailed-exitcode")
    assert result.code == 0, result.err
    assert "No changes: acme/acme-norway." in result.out


def test_tombstone_delete_cascades_and_keeps_templates(cli: Cli) -> None:
    seeded(
        cli,
        "version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n"
        "  - {name: visma oslo, absent: true}\n",
    )
    obj = plan_json(cli)
    (action,) = obj["tenants"][0]["actions"]
    assert action["action"] == "delete" and action["reason"] == "delete_because_tombstone"
    assert action["cascade"] == [
        {"kind": "report", "name": "P&L March", "company": "F0001"},
        {"kind": "budget_flow", "name": "Budget 2027", "company": "F0002"},
    ]
    assert action["kept"] == [{"kind": "report_template", "name": "P&L template"}]
    # Deleting every connection of the tenant trips the mass-delete breaker.
    assert obj["guards"]["needs_allow_mass_delete"] is True
    refused = cli("apply", "--auto-approve", "--allow-cascade")
    assert refused.code == 1 and "--allow-mass-delete" in refused.err
    done = cli("apply", "--auto-approve", "--allow-cascade", "--allow-mass-delete")
    assert done.code == 0, done.err
    assert "Visma Oslo" not in dump(cli)


def test_max_delete_breaker(cli: Cli) -> None:
    templates = "        report_templates:\n          - {name: P&L template, connection: Visma Oslo}\n"
    live = LIVE.replace(templates, "")
    extra = "".join(
        f"          - {{name: C{i}, managed: true, integration: dynamics-ax, server: ax, "
        f"database: AX, authentication: windows}}\n"
        for i in range(3)
    )
    live = live.replace(
        "        connections:\n          - name: Visma Oslo",
        "        connections:\n" + extra + "          - name: Visma Oslo",
        1,
    )
    tombstones = "".join(f"  - {{name: C{i}, absent: true}}\n" for i in range(3))
    seeded(cli, TENANT + tombstones, live)
    assert plan_json(cli)["guards"]["needs_allow_mass_delete"] is False
    obj = plan_json(cli, "--max-delete", "2")
    assert obj["guards"]["mass_delete"] == ["3 connections would be deleted, more than --max-delete 2"]
    refused = cli("apply", "--auto-approve", "--max-delete", "2")
    assert refused.code == 1 and "--allow-mass-delete" in refused.err
    # A saved plan made with a higher limit is held to apply's own (it was held to its own).
    assert cli("plan", "--max-delete", "50", "--out", "plan.json").code == 0
    saved = cli("apply", "--plan", "plan.json", "--auto-approve", "--max-delete", "2")
    assert saved.code == 1 and "more than --max-delete 2" in saved.err, saved.err
    assert cli("apply", "--auto-approve", "--max-delete", "3").code == 0


def test_unknown_tenant_file_names_known_tenants(cli: Cli) -> None:
    seeded(cli)
    cli.write(
        "tenants/acme/acme-denmark.yaml",
        "version: 1\ncustomer: acme\ntenant: acme-denmark\nconnections: []\n",
    )
    result = cli("plan")
    assert result.code == 1
    assert (
        "tenant acme/acme-denmark does not exist in the store (tenants are created in the "
        "portal); the store knows acme/acme-norway, acme/acme-sweden"
    ) in result.err


def test_tenant_filter_unknown_is_an_error(cli: Cli) -> None:
    seeded(cli)
    result = cli("plan", "--tenant", "acme/nope")
    assert result.code == 1
    assert "no tenant file declares acme/nope" in result.err
    bad = cli("plan", "--tenant", "acme")
    assert bad.code == 1 and "is not CUSTOMER/TENANT" in bad.err
    assert cli("export", "--tenant", "acme/nope").code == 1


def _tree(root: Path) -> dict[str, bytes]:
    """The repository's files (but git's and the embedded store's): equal before and after a
    run means the run wrote none."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".git", ".reconciler"} & set(p.relative_to(root).parts)
    }


NEW_AX = "  - {name: New AX, integration: dynamics-ax, server: ax, database: AX, authentication: windows}\n"


@pytest.mark.parametrize("suffix", ["YAML", "Yaml", "YML"])
def test_a_tenant_file_named_in_another_case_is_refused_never_skipped(cli: Cli, suffix: str) -> None:
    """tenants/acme/acme-sweden.YAML was skipped without a word: validate said OK and apply
    applied the rest, so a tenant someone added was never managed (and with prune, could be
    pruned as undeclared). Refused by every command that reads the files, writing nothing."""
    seeded(cli, TENANT + NEW_AX)  # a change apply would make
    cli.write(
        f"tenants/acme/acme-sweden.{suffix}",
        "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections: []\n",
    )
    before, files = dump(cli), _tree(cli.root)
    said = (
        f"error: tenants/acme/acme-sweden.{suffix}: is named .{suffix}, and tenant files end in "
        ".yaml in lowercase: it would never be read; rename it to acme-sweden.yaml"
    )
    for args in (
        ["validate"],
        ["validate", "tenants/acme"],
        ["validate", f"tenants/acme/acme-sweden.{suffix}"],
        ["plan"],
        ["plan", "--tenant", "acme/acme-norway"],
        ["apply", "--auto-approve"],
        ["drift"],
    ):
        result = cli(*args)
        assert result.code == 1, (args, result.both)
        assert result.err.splitlines() == [said], (args, result.err)
    assert dump(cli) == before
    assert _tree(cli.root) == files
    (cli.root / f"tenants/acme/acme-sweden.{suffix}").rename(cli.root / "tenants/acme/acme-sweden.yaml")
    assert cli("validate").code == 0
    # nor is a plan saved under such a name among them (every later run would refuse it)
    saved = cli("plan", "--out", f"tenants/acme/saved.{suffix}")
    assert saved.code == 1 and "is where tenant files are read from" in saved.err, saved.both
    assert not (cli.root / f"tenants/acme/saved.{suffix}").exists()


def test_a_folder_given_twice_in_two_spellings_is_read_once(cli: Cli) -> None:
    """`validate tenants/acme ../<root>/tenants/acme` read each file twice and refused every
    tenant as declared by two files. A file named by two PATHs is read once."""
    seeded(cli, TENANT + NEW_AX)
    up = f"../{cli.root.name}/tenants/acme"
    spellings = [
        ["tenants/acme", up],
        ["tenants/acme", "./tenants/acme/"],
        ["tenants/acme", str(cli.root / "tenants/acme")],
        ["tenants", up, "tenants/acme/acme-norway.yaml"],
        ["tenants/acme/acme-norway.yaml", f"{up}/acme-norway.yaml"],
    ]
    for paths in spellings:
        result = cli("validate", *paths)
        assert result.code == 0, (paths, result.both)
        assert result.err == "OK: 1 tenant file(s), 2 connection(s) valid.\n", (paths, result.err)
        obj = plan_json(cli, *paths)
        assert [t["tenant"] for t in obj["tenants"]] == ["acme-norway"], paths
        assert obj["summary"]["create"] == 1, paths
    assert cli("apply", "--auto-approve", "tenants/acme", up).code == 0
    assert dump(cli).count("New AX") == 1
    assert plan_json(cli, "tenants/acme", up)["summary"]["create"] == 0


def test_prune_deletes_only_managed(cli: Cli) -> None:
    live = LIVE.replace(
        "        report_templates:",
        """\
          - {name: By hand, managed: false, integration: dynamics-ax, server: ax, database: AX,
             authentication: windows}
        report_templates:""",
    )
    seeded(
        cli,
        "version: 1\ncustomer: acme\ntenant: acme-norway\nprune: true\nconnections:\n"
        "  - {name: New, integration: dynamics-ax, server: ax, database: AX, "
        "authentication: windows}\n",
        live,
    )
    obj = plan_json(cli)
    tenant = obj["tenants"][0]
    assert [(a["action"], a["connection"], a["reason"]) for a in tenant["actions"]] == [
        ("delete", "Visma Oslo", "delete_because_pruned"),
        ("create", "New", "create_because_declared"),
    ]
    assert tenant["unmanaged"] == ["By hand"]


def test_missing_tenant_file_deletes_nothing(cli: Cli) -> None:
    seeded(cli)
    (cli.root / "tenants/acme/acme-norway.yaml").unlink()
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        "version: 1\ncustomer: acme\ntenant: acme-sweden\nprune: true\nconnections: []\n",
    )
    obj = plan_json(cli)
    assert [t["tenant"] for t in obj["tenants"]] == ["acme-sweden"]
    assert obj["summary"]["delete"] == 0


def test_adopt_makes_managed(cli: Cli) -> None:
    seeded(cli, live=LIVE.replace("managed: true", "managed: false"))
    obj = plan_json(cli)
    assert [a["action"] for a in obj["tenants"][0]["actions"]] == ["adopt"]
    assert cli("apply", "--auto-approve").code == 0
    assert "managed: true" in dump(cli)
    assert plan_json(cli)["summary"]["adopt"] == 0


def test_password_is_compared_by_fingerprint_never_shown(cli: Cli) -> None:
    seeded(cli)
    assert plan_json(cli)["summary"]["update"] == 0  # same password: no change
    changed = plan_json(cli, env={CANARY_ENV: CANARY + "-rotated"})
    (action,) = changed["tenants"][0]["actions"]
    assert action["changes"] == [{"field": "password", "sensitive": True}]
    text = cli("plan", env={CANARY_ENV: CANARY + "-rotated"})
    assert "password: (sensitive value changed)" in text.out
    assert cli("apply", "--auto-approve", env={CANARY_ENV: CANARY + "-rotated"}).code == 0
    assert plan_json(cli, env={CANARY_ENV: CANARY + "-rotated"})["summary"]["update"] == 0
    assert plan_json(cli)["summary"]["update"] == 1


def test_missing_secret_plans_but_refuses_apply(cli: Cli) -> None:
    seeded(
        cli,
        TENANT + "  - name: New SQL\n    integration: dynamics-nav\n    server: nav\n"
        "    database: NAV\n    authentication: sql\n    login: l\n"
        "    password: {env: OSR_NOT_SET}\n",
    )
    obj = plan_json(cli)
    (create,) = obj["tenants"][0]["actions"]
    assert create["needs_secret"] == "env OSR_NOT_SET"
    assert "New SQL: password not compared (env OSR_NOT_SET not set)" in obj["tenants"][0]["notes"]
    before = dump(cli)
    refused = cli("apply", "--auto-approve")
    assert refused.code == 1
    assert "acme/acme-norway/New SQL needs the password from env OSR_NOT_SET, which is not set" in refused.err
    assert dump(cli) == before


def test_drift_tells_drift_from_pending(cli: Cli) -> None:
    seeded(cli)
    assert cli("drift").code == 0
    # Someone edits the portal by hand: the live store no longer matches what was applied.
    edit_by_hand(cli, "Visma Oslo", database_name="vbsys_copy")
    drift = cli("drift", "--format", "json")
    assert drift.code == 2
    item = json.loads(drift.out)["tenants"][0]["connections"][0]
    assert item == {"connection": "Visma Oslo", "status": "drift", "action": "update", "fields": ["database"]}
    # git changes too, and differently: both.
    cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("[F0001, F0002]", "[F0001]"))
    both = json.loads(cli("drift", "--format", "json").out)["tenants"][0]["connections"][0]
    assert both["status"] == "drift_and_pending"
    text = cli("plan")
    assert '~ update "Visma Oslo"  (drift and pending)' in text.out


def test_export_round_trip_plans_no_changes(cli: Cli) -> None:
    seeded(cli)
    exported = cli("export", "--tenant", "acme/acme-norway")
    assert exported.code == 0, exported.err
    assert "OSR_ACME_ACME_NORWAY_VISMA_OSLO_PASSWORD" in exported.out
    cli.write("tenants/acme/acme-norway.yaml", exported.out)
    env = {"OSR_ACME_ACME_NORWAY_VISMA_OSLO_PASSWORD": CANARY}
    assert cli("validate").code == 0
    result = cli("plan", "--detailed-exitcode", env=env)
    assert result.code == 0, result.out


def test_read_only_commands_write_nothing(cli: Cli) -> None:
    seeded(cli, TENANT.replace("[F0001, F0002]", "[F0001]"))
    before = dump(cli)
    for args in (
        ["plan"],
        ["drift"],
        ["validate"],
        ["export", "--tenant", "acme/acme-norway"],
        ["history"],
        ["store", "dump"],
    ):
        assert cli(*args).code in (0, 2)
    assert dump(cli) == before
    assert json.loads(cli("history", "--format", "json").out) == []


@pytest.mark.parametrize("command", [("plan",), ("apply", "--auto-approve")])
def test_plan_or_apply_on_missing_embedded_store_creates_nothing(
    embedded_cli: Cli, command: tuple[str, ...]
) -> None:
    """A fresh store holds no tenant: apply made one, then failed on it (exit 1, a store written)."""
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    result = embedded_cli(*command)
    assert result.code == 1
    assert "no store at" in result.err and "reconciler store init" in result.err
    assert not (embedded_cli.root / ".reconciler").exists()


def test_embedded_store_creates_key_file_0600(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    key = embedded_cli.root / ".reconciler" / "store.key"
    db = embedded_cli.root / ".reconciler" / "store.db"
    assert key.stat().st_mode & 0o777 == 0o600
    assert db.stat().st_mode & 0o077 == 0
    embedded_cli.write("live.yaml", LIVE)
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    assert embedded_cli("plan", "--detailed-exitcode").code == 0


def test_usage_errors_exit_one(cli: Cli) -> None:
    result = cli("plan", "--format", "yaml")
    assert result.code == 1 and "error:" in result.err
    assert cli.process("frobnicate").code == 1  # the console script's own exit code


def test_bad_store_urls_are_clear_errors(embedded_cli: Cli) -> None:
    env = {"RECONCILER_STORE_KEY": "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E="}
    for url, fragment in [
        ("foo://u:pw@h/db", "Can't load plugin: sqlalchemy.dialects:foo"),
        ("postgresql+psycopg://u:pw@h:port/db", "is not a SQLAlchemy URL"),
        ("mysql+pymysql://root@127.0.0.1:3306/test?charset=bogus", "store mysql+pymysql://"),
        ("just-a-path.db", "is not a SQLAlchemy URL"),
    ]:
        result = embedded_cli("--store", url, "store", "dump", env=env)
        assert result.code == 1 and fragment in result.err, (url, result.err)
        assert ":pw@" not in result.err
    # PyMySQL refuses these options with plain Python errors before it reaches a server (port
    # 1): each is a one-line store error for every command that opens the store, not a crash.
    for query, fragment in [
        ("bogus=1", "the driver takes no option 'bogus'; remove it from the URL"),
        ("isolation_level=BOGUS", "the driver takes no option 'isolation_level'"),
        ("ssl_ca=/nonexistent/ca.pem", "a file the URL names (ssl_ca=/nonexistent/ca.pem); correct the path"),
        ("charset=bogus", "the charset 'bogus' cannot hold every name"),
        ("charset=utf8", "the charset 'utf8' cannot hold every name (characters beyond U+FFFF"),
        (
            "charset=latin1",
            "cannot hold every name (characters beyond U+FFFF, such as emoji, would be "
            "stored as '?'); write ?charset=utf8mb4",
        ),
    ]:
        url = f"mysql+pymysql://root:pw@127.0.0.1:1/test?{query}"
        for command in (["store", "dump"], ["store", "init"], ["history"]):
            result = embedded_cli("--store", url, *command, env=env)
            assert result.code == 1 and fragment in result.err, (query, command, result.err)
            assert "internal error" not in result.err and ":pw@" not in result.err


def test_a_store_url_a_driver_cannot_parse_or_encode_does_not_show_its_password(embedded_cli: Cli) -> None:
    """A URL with no '@' was echoed whole (nothing to mask up to); PyMySQL's error for a password
    letter Latin-1 lacks quoted that letter and its position: each gave the password away."""
    env = {"RECONCILER_STORE_KEY": "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E="}
    result = embedded_cli("--store", f"postgresql+psycopg://u:{CANARY}", "store", "dump", env=env)
    assert result.code == 1 and CANARY not in result.both
    assert (
        "(postgresql+psycopg://…) is not a SQLAlchemy URL (not shown: it may hold a password)" in result.err
    )
    require_server("mariadb")
    base = sa.make_url(SERVER_URLS["mariadb"])
    url = base.set(password=f"{CANARY}\u65e5").render_as_string(hide_password=False)
    result = embedded_cli("--store", url, "store", "dump", env=env)
    assert result.code == 1, result.err
    assert CANARY not in result.both and "\\u65e5" not in result.both and "\u65e5" not in result.both
    assert "the driver could not encode what it sends the server (UnicodeEncodeError" in result.err


def test_no_command_shows_help(embedded_cli: Cli) -> None:
    result = embedded_cli()
    assert result.code == 0 and result.out.startswith("Usage: reconciler [OPTIONS] COMMAND")
    assert embedded_cli.process("--version").out.startswith("reconciler 0.1.0\nPython 3.")


def test_an_interrupt_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C before anything was written is an error like any other: exit 1, as DESIGN lists
    (0, 1 and 2 are the exit codes pipelines rely on; not the shell's 130)."""
    from reconciler import cli as cli_module
    from reconciler import desired

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(desired, "discover", interrupted)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    assert cli_module.main(["validate"]) == 1
    assert "nothing was changed" in capsys.readouterr().err  # click reports it as aborted


def test_an_output_that_cannot_be_written_is_an_error_not_a_bug(cli: Cli) -> None:
    """`> /dev/full` (a full disk): exit 1 with the reason, no "internal error", no debug log;
    apply, whose plan could not be shown, applies nothing."""
    seeded(cli)
    before = cli("store", "dump").out
    for args in (
        ["plan"],
        ["apply", "--auto-approve"],
        ["completion", "bash"],
        ["store", "dump"],
        # click's own writes: they were an internal error ("this is a bug"), with a debug log
        ["--help"],
        ["plan", "--help"],
        ["--version"],
        [],
    ):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [RECONCILER, *args], cwd=cli.root, env=cli.env, stdout=full, stderr=subprocess.PIPE, text=True
            )
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr == (
            "error: cannot write to standard output (No space left on device); send it where there is room\n"
        ), args
    assert cli("store", "dump").out == before


def test_a_closed_standard_output_is_an_error_not_a_bug(cli: Cli) -> None:
    """`reconciler validate >&-`: Python has no sys.stdout, and every command said "internal
    error (AttributeError)" with a debug log."""
    seeded(cli)
    before = cli("store", "dump").out
    for args in (["validate"], ["plan"], ["apply", "--auto-approve"], ["--version"]):
        done = subprocess.run(
            ["bash", "-c", '"$@" >&-', "closed", RECONCILER, *args],
            cwd=cli.root,
            env=cli.env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr == (
            "error: standard output is closed; send it somewhere, e.g. > /dev/null (nothing was done)\n"
        ), args
    assert cli("store", "dump").out == before


def test_a_closed_standard_error_runs_the_command_unsaid(cli: Cli) -> None:
    """`reconciler plan 2>&-`: an internal error (no sys.stderr), nothing printed, exit 1 and a
    debug log. The command runs; its messages go nowhere, as asked."""
    seeded(cli)
    done = subprocess.run(
        ["bash", "-c", '"$@" 2>&-', "closed", RECONCILER, "plan"],
        cwd=cli.root,
        env=cli.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert done.returncode == 0 and "Plan: " in done.stdout


INTERRUPTED_IMPORT = (
    "class Interrupt:\n"
    "    def find_spec(self, name, path, target=None):\n"
    "        if name == 'reconciler.cli':\n"
    "            raise KeyboardInterrupt\n"
    "sys.meta_path.insert(0, Interrupt())\n"
)
# main() interrupted where no handler of its own is: saying an error (cli._inert imports render)
INTERRUPTED_MAIN = (
    "import reconciler.cli\n"
    "def interrupted(argv=None):\n"
    "    raise KeyboardInterrupt\n"
    "reconciler.cli.main = interrupted\n"
)


@pytest.mark.parametrize(
    "where", [INTERRUPTED_IMPORT, INTERRUPTED_MAIN], ids=["importing", "saying-an-error"]
)
def test_a_ctrl_c_while_the_tool_is_still_importing_is_exit_1_not_a_traceback(
    tmp_path: Path, where: str
) -> None:
    """The console script imported reconciler.cli before any handler: a Ctrl-C in the first
    half second printed a KeyboardInterrupt traceback and exited 130, outside 0, 1 and 2; so did
    one landing while main() said an error. The entry (reconciler:console, which the console
    script and `python -m reconciler` call) says it as at any time before a write. The
    interrupt is raised where it would land."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import sys\n" + where + "import reconciler\nsys.exit(reconciler.console())\n", encoding="utf-8"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (1, "error: interrupted; nothing was changed\n")
    entry = (Path(sys.executable).parent / "reconciler").read_text(encoding="utf-8")
    assert "from reconciler import console" in entry  # the installed console script uses it


def test_a_postgresql_url_with_its_own_options_is_the_same_store_for_every_command(
    workspace: Path, tmp_path: Path
) -> None:
    """`?options=-csearch_path%3Dosr`: a read-only command's own option (read-only transactions)
    replaced the URL's, so plan and drift read the schema `public` while apply wrote `osr`: "not
    initialised", or, with another store there, another fleet's plan."""
    require_server("postgresql")
    url = sa.make_url(private_database("postgresql"))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS osr CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA osr")
    reset_server(url.render_as_string(hide_password=False))  # the schema public: no store
    in_osr = url.update_query_dict({"options": "-csearch_path=osr"}).render_as_string(hide_password=False)
    cli = Cli(
        workspace,
        {**base_env(workspace.parent), "RECONCILER_STORE": in_osr, "RECONCILER_STORE_KEY": TEST_KEY},
    )
    try:
        assert cli("store", "init").code == 0
        seeded(cli, TENANT)
        plan = cli("plan")
        assert plan.code == 0 and "acme/acme-norway" in plan.out, plan.err
        with engine.connect() as conn:  # the store is osr's: nothing was made in public
            assert not sa.inspect(conn).has_table("osr_meta", schema="public")
        assert cli("store", "dump").code == 0
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS osr CASCADE")
        engine.dispose()


def test_a_store_init_cut_short_is_finished_by_the_next_and_a_damaged_store_is_named(
    workspace: Path, store_url: str
) -> None:
    """MariaDB commits each CREATE TABLE: an init killed after some tables, before its version,
    left a store every command refused with `store schema version None`, `store init` too.
    The next init finishes it; a store with rows and no version, or with no store id, is
    refused with what to do (it was an internal error), and nothing is written."""
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    cli = Cli(
        workspace,
        {**base_env(workspace.parent), "RECONCILER_STORE": store_url, "RECONCILER_STORE_KEY": TEST_KEY},
    )
    try:
        store.metadata.create_all(engine, tables=store.metadata.sorted_tables[:4])  # then killed
        refused = cli("store", "dump")
        assert refused.code == 1 and "is not initialised (its tables are there" in refused.err, refused.err
        assert cli("store", "init").code == 0
        seeded(cli, TENANT)
        assert cli("plan").code == 0
        with engine.begin() as conn:
            conn.execute(store.store_meta.delete().where(store.store_meta.c.key == "store_id"))
        damaged = cli("plan")
        assert damaged.code == 1 and "has no store id in osr_meta" in damaged.err, damaged.err
        with engine.begin() as conn:
            conn.execute(store.store_meta.delete())
        before = dump_rows(engine)
        kept = cli("store", "init")
        assert kept.code == 1 and "has no schema version in osr_meta but holds rows" in kept.err, kept.err
        assert dump_rows(engine) == before
    finally:
        engine.dispose()


def dump_rows(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t)))) for t in store.metadata.sorted_tables}


def test_a_store_url_given_as_path_is_refused_unshown(embedded_cli: Cli) -> None:
    """`reconciler import URL` (the store given where PATH goes) made a folder named after the
    URL, password and all, and its second run printed the URL whole ("exists, not touched")."""
    assert embedded_cli("store", "init").code == 0
    url = f"mysql+pymysql://u:{CANARY}@h/db"
    for command in (["import"], ["validate"], ["plan"], ["drift"], ["drift", "--write"], ["apply"]):
        for _ in range(2):
            result = embedded_cli(*command, url)
            assert result.code == 1, (command, result.both)
            assert "a PATH holds '://' and names no file (not shown: it may be a store URL" in result.err
    assert not (embedded_cli.root / "mysql+pymysql:").exists()


def test_an_option_file_pymysql_cannot_read_is_a_store_error_without_its_text(
    embedded_cli: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """?read_default_file= naming a file that is not an option file was an internal error, and
    the debug log it wrote held the file's first line (where a password may be)."""
    option_file = tmp_path_factory.mktemp("elsewhere") / "client.cnf"  # the repo is searched for it
    option_file.write_text(f'"{CANARY}\n[client]\n', encoding="utf-8")
    env = {"RECONCILER_STORE_KEY": "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E="}
    url = f"mysql+pymysql://root@127.0.0.1:1/test?read_default_file={option_file}"
    result = embedded_cli("--store", url, "store", "dump", env=env)
    assert result.code == 1 and "internal error" not in result.err, result.err
    assert "the option file the URL names (read_default_file) is not one PyMySQL reads" in result.err
    assert "MissingSectionHeaderError at line 1" in result.err


def test_one_valued_options_and_tenant_arguments_are_checked_whole(embedded_cli: Cli) -> None:
    """`export --tenant a --tenant b` exported b alone (every other --tenant repeats); a
    --tenant ending in a line break (a YAML block in a CI variable) passed the check and was
    looked up as a tenant; click's choice list printed its layout as \\n\\t."""
    assert embedded_cli("store", "init").code == 0
    twice = embedded_cli("export", "--tenant", "acme/acme-norway", "--tenant", "acme/acme-sweden")
    assert twice.code == 1 and twice.out == ""
    assert "--tenant is given 2 times and takes one value; give it once" in twice.err
    connection = embedded_cli(
        "companies", "--tenant", "acme/acme-norway", "--connection", "A", "--connection", "B"
    )
    assert connection.code == 1 and "--connection is given 2 times and takes one value" in connection.err
    for command in (["export"], ["plan"], ["drift"], ["store", "dump"]):
        result = embedded_cli(*command, "--tenant", "acme/acme-norway\n")
        assert result.code == 1, (command, result.both)
        assert "--tenant: 'acme/acme-norway\\n' is not CUSTOMER/TENANT" in result.err, (command, result.err)
    missing = embedded_cli("completion")
    assert missing.err == (
        "error: Missing argument 'SHELL'. Choose from: bash, zsh, fish (see `reconciler completion --help`)\n"
    )


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])  # ascii: click writes UTF-8
def test_output_in_another_encoding_escapes_what_it_lacks(cli: Cli, encoding: str) -> None:
    """PYTHONIOENCODING=cp1252 (as Windows writes to a file): the plan's → was an internal error
    (UnicodeEncodeError) halfway through the output."""
    copy_demo(cli.root, REPO)
    assert cli("store", "seed", str(REPO / "examples" / "demo-store.yaml")).code == 0
    env = {**cli.env, **DEMO_ENV, "PYTHONIOENCODING": encoding, "PYTHONUTF8": "0"}
    done = subprocess.run([RECONCILER, "plan"], cwd=cli.root, env=env, capture_output=True, timeout=300)
    out, err = done.stdout.decode(encoding), done.stderr.decode(encoding)
    assert done.returncode == 0, err
    assert '> rename "Oslo GP" \\u2192 "Dynamics GP Oslo"' in out
    assert out.rstrip().endswith("= kept (detached, not deleted).")


def test_a_saved_plan_applies_from_any_folder_of_the_repository(cli: Cli) -> None:
    """The plan kept each tenant file's path as the plan's folder named it: made in tenants/acme
    (or applied there), apply refused "tenants/acme/acme-norway.yaml ... is not a tenant file
    under .../tenants"; made elsewhere, the path was absolute: another checkout refused it."""
    seeded(cli, TENANT.replace("[F0001, F0002]", "[F0001]"))
    (cli.root / "docs").mkdir()
    made = cli("plan", "--out", "../plan.json", cwd=cli.root / "docs")
    assert made.code == 0, made.err
    saved = json.loads((cli.root / "plan.json").read_text(encoding="utf-8"))
    assert [t["path"] for t in saved["saved"]["tenants"].values()] == ["tenants/acme/acme-norway.yaml"]
    applied = cli(
        "apply",
        "--plan",
        "../../plan.json",
        "--auto-approve",
        "--allow-cascade",
        cwd=cli.root / "tenants" / "acme",
    )
    assert applied.code == 0, applied.err
    assert "Applied 1 action(s)" in applied.err


def test_a_library_warning_is_one_line_of_ours(embedded_cli: Cli) -> None:
    """SQLAlchemy's warning about a store URL's option printed Python's two lines, the second
    a line of the tool's source (`engine = sa.create_engine(url, **kwargs)`)."""
    assert embedded_cli("store", "init").code == 0
    result = embedded_cli("locks", "--store", "sqlite:///.reconciler/store.db?mode=rw")
    assert result.code == 0, result.err
    first = result.err.splitlines()[0]
    assert first.startswith("warning: Query string argument(s) 'mode' are not accepted by the pysqlite")
    assert "create_engine" not in result.err and "SAWarning" not in result.err


def test_an_empty_holder_or_a_prefix_no_variable_starts_with_is_an_error(embedded_cli: Cli) -> None:
    """`unlock --holder "$JOB"` with JOB unset said "No lock is held by ''" and exited 0; a
    RECONCILER_SECRET_ENV_PREFIX of 'a b' was taken, and every password reference refused with
    "name it a b... (e.g. a bOSR_...)"."""
    assert embedded_cli("store", "init").code == 0
    empty = embedded_cli("unlock", "--holder", "")
    assert (empty.code, empty.err) == (
        1,
        "error: --holder is empty; give the holder as `reconciler locks` shows it\n",
    )
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    prefix = embedded_cli("validate", env={"RECONCILER_SECRET_ENV_PREFIX": "a b"})
    assert prefix.code == 1
    assert prefix.err == (
        "error: RECONCILER_SECRET_ENV_PREFIX='a b' is not the start of a variable name; write "
        "letters, digits and _ (not first a digit), such as OSR_\n"
    )


def test_out_dash_is_not_a_file_named_dash(cli: Cli) -> None:
    """`plan --out -` (standard output, as many tools read it) wrote a file named `-`."""
    seeded(cli)
    result = cli("plan", "--out", "-")
    assert result.code == 1 and "--out '-': give the name of a file to save the plan in" in result.err
    assert not (cli.root / "-").exists()
