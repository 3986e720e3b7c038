"""The round trip through the command line, on every store of the matrix (DESIGN §9):
import a portal, plan only adoptions, accept a hand change with drift --write, apply records it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from reconciler import gitrepo, spec, store, strictyaml
from tests import roundtrip_support as rs
from tests.conftest import CANARY, Cli, git

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "tenant.schema.json").read_text())
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
            login: osr_reader
            password: {env: OSR_CANARY}
            companies: [{id: "0001"}, {id: F0002}]
          - name: "NO"
            managed: false
            integration: dynamics-ax
            server: ax01
            database: "2026-01-01"
            authentication: windows
            companies: [{id: "1e3"}]
      - name: acme-sweden
        connections: []
"""
OSLO = "OSR_ACME_ACME_NORWAY_VISMA_OSLO_PASSWORD"


def _actions(cli: Cli, env: dict[str, str]) -> list[tuple[str, str]]:
    result = cli("plan", "--format", "json", env=env)
    assert result.code == 0, result.err
    return [(a["action"], a["connection"]) for t in json.loads(result.out)["tenants"] for a in t["actions"]]


def _edit_by_hand(cli: Cli, current: str, **values: object) -> None:
    """Change a live connection the way the portal's UI would: the tool does not know."""
    if "name" in values:
        values["name_key"] = spec.identity_key(str(values["name"]))
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                store.connections.update().where(store.connections.c.name == current).values(**values)
            )
    finally:
        engine.dispose()


def _delete_by_hand(cli: Cli, name: str) -> None:
    """Delete a live connection (it has no companies) the way the portal would."""
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(store.connections.delete().where(store.connections.c.name == name))
    finally:
        engine.dispose()


def _applied_then_deleted_by_hand(cli: Cli) -> None:
    """acme/acme-sweden declares `Made`, the tool applied it, and the portal deleted it."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n"
        "  - {name: Made, integration: dynamics-gp, server: gp01, database: D, authentication: windows}\n",
    )
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    _delete_by_hand(cli, "Made")


def _imported_and_applied(cli: Cli) -> dict[str, str]:
    """The LIVE portal imported into files and applied (every connection adopted); the
    environment that sets its password variable."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    assert cli("import").code == 0
    env = {OSLO: CANARY}
    assert cli("apply", "--auto-approve", env=env).code == 0
    return env


def test_a_tree_imported_elsewhere_is_planned_as_a_tree(cli: Cli) -> None:
    """`import imported` (import --help's example) wrote imported/acme/acme-norway.yaml, which
    `plan imported` and `validate imported` refused ("tenant files live at tenants/...")."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    assert cli("import", "imported").code == 0
    assert (cli.root / "imported/acme/acme-norway.yaml").is_file()
    assert cli("validate", "imported").code == 0
    planned = cli("plan", "imported", "--format", "json", env={OSLO: CANARY})
    assert planned.code == 0, planned.err
    actions = [
        (a["action"], a["connection"]) for t in json.loads(planned.out)["tenants"] for a in t["actions"]
    ]
    assert actions == [("adopt", "NO")]
    # A customer's folder stays one: its files lie directly in it.
    assert cli("validate", "imported/acme").code == 0
    cli.write("imported/acme/stray/x.yaml", "version: 1\n")
    refused = cli("validate", "imported/acme")
    assert refused.code == 1 and "stray/x.yaml:1:1: tenant files live at" in refused.err, refused.err


def test_import_plan_adopts_then_drift_write_round_trip(cli: Cli) -> None:
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-sweden.yaml", "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections: []\n"
    )
    before = cli("store", "dump").out

    imported = cli("import")
    assert imported.code == 0, imported.err
    assert "Wrote tenants/acme/acme-norway.yaml (acme/acme-norway)" in imported.out
    assert f'  {OSLO}  # acme/acme-norway "Visma Oslo"\n' in imported.out
    assert (
        "tenants/acme/acme-sweden.yaml: exists, not touched (acme/acme-sweden); to accept "
        "the portal's changes into it, run `reconciler drift --write`"
    ) in imported.err
    assert cli("store", "dump").out == before  # import never writes to the store
    path = cli.root / "tenants/acme/acme-norway.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/tenant.schema.json\n")
    assert "prune: false\n" in text and "companies: ['0001', F0002]" in text
    assert rs.yaml12(text) == strictyaml.parse("file", text.encode()).data
    jsonschema.validate(rs.yaml12(text), SCHEMA)

    env = {OSLO: CANARY}
    assert _actions(cli, env) == [("adopt", "NO")]
    assert cli("apply", "--auto-approve", env=env).code == 0
    assert _actions(cli, env) == []

    # Someone changes the server and renames the connection in the portal.
    _edit_by_hand(cli, "Visma Oslo", server="SQL02\\VISMA", name="Visma Oslo kontor")
    assert cli("drift").code == 2
    written = cli("drift", "--write")
    assert written.code == 2, written.err
    assert "acme/acme-norway/Visma Oslo: renamed in the portal to 'Visma Oslo kontor'" in written.out
    after = path.read_text(encoding="utf-8")
    assert after == text.replace("name: Visma Oslo\n", "name: Visma Oslo kontor\n").replace(
        "server: SQL01\\VISMA\n", "server: SQL02\\VISMA\n"
    )
    assert _actions(cli, env) == []
    assert cli("drift", "--write").code == 0  # nothing left to accept

    # Merged and applied: the accepted state is recorded, so drift is clean and a later edit
    # in git is pending, not a conflict.
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "accept the portal's changes")
    applied = cli("apply", "--auto-approve", env=env)
    assert applied.code == 0, applied.err
    assert "acme/acme-norway/Visma Oslo kontor: recorded as applied" in applied.err
    (recorded,) = [e for e in json.loads(cli("history", "--format", "json").out) if e["action"] == "record"]
    assert recorded["commit"] == git(cli.root, "rev-parse", "HEAD").strip()  # it had none
    assert cli("drift").code == 0
    path.write_text(after.replace("SQL02", "SQL03"), encoding="utf-8")
    report = json.loads(cli("drift", "--format", "json").out)
    assert [c["status"] for t in report["tenants"] for c in t["connections"]] == ["pending"]


def test_import_names_an_unknown_tenant_and_writes_nothing(cli: Cli) -> None:
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    result = cli("import", "--tenant", "acme/acme-finland")
    assert result.code == 1
    assert "tenant acme/acme-finland does not exist in the store" in result.err
    assert not (cli.root / "tenants").exists()


def test_a_store_url_given_as_a_path_is_not_shown_with_its_password(cli: Cli) -> None:
    """`reconciler import URL` (meant: --store URL) writes under a folder of that name, shown
    with its // made one /, which the URL mask did not know: the password printed in clear
    (import's "Wrote", store seed's error). Cli asserts that no output holds the canary."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    url = f"postgresql+psycopg://postgres:{CANARY}@127.0.0.1:5432/osr"
    seed = cli("store", "seed", url)
    assert seed.code == 1 and "postgresql+psycopg:/postgres:***@127.0.0.1:5432/osr: cannot read" in seed.err
    # import refuses it (a folder named after it held the password, and a second run printed
    # it whole); tests/test_cli.py checks every command that takes a PATH
    written = cli("import", url)
    assert written.code == 1 and "a PATH holds '://' and names no file" in written.err
    assert not (cli.root / "postgresql+psycopg:").exists()


def test_drift_write_keeps_a_new_entry_named_as_a_connection_renamed_since(cli: Cli) -> None:
    """`Old` was applied, then renamed to `New` through previous_names: an entry `Old` added
    since is a connection to create (pending), not one the portal deleted."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    entry = "  - {name: %s, integration: dynamics-gp, server: %s, database: D, authentication: windows%s}\n"
    head = "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n"
    path = cli.write("tenants/acme/acme-sweden.yaml", head + entry % ("Old", "gp01", ""))
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    cli.write("tenants/acme/acme-sweden.yaml", head + entry % ("New", "gp01", ", previous_names: [Old]"))
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    text = head + entry % ("New", "gp01", "") + entry % ("Old", "gp77", "")
    path.write_text(text, encoding="utf-8")
    written = cli("drift", "--write", "--tenant", "acme/acme-sweden")
    assert written.code == 0, written.out + written.err
    assert "Nothing to accept" in written.out
    assert path.read_text(encoding="utf-8") == text
    assert _actions(cli, {}) == [("create", "Old")]


def test_drift_write_says_it_writes_text_only(cli: Cli) -> None:
    refused = cli("drift", "--write", "--format", "json")
    assert refused.code == 1 and refused.out == ""
    assert "--write says what it wrote as text; leave out --format json" in refused.err


def test_drift_calls_a_connection_deleted_by_hand_drift_not_pending(cli: Cli) -> None:
    """The tool applied it and git did not change: the portal deleted it (drift --help: drift
    is live changed by hand, pending is git not applied)."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    head = "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n"
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        head + "  - {name: Made, integration: dynamics-gp, server: gp01, "
        "database: D, authentication: windows}\n",
    )
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    report = json.loads(cli("drift", "--format", "json", "--tenant", "acme/acme-sweden").out)
    assert report["tenants"][0]["connections"] == []
    _delete_by_hand(cli, "Made")
    drifted = cli("drift", "--format", "json", "--tenant", "acme/acme-sweden")
    assert drifted.code == 2
    (item,) = json.loads(drifted.out)["tenants"][0]["connections"]
    assert (item["status"], item["action"]) == ("drift", "create")
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        head + "  - {name: New one, integration: dynamics-gp, server: gp01, "
        "database: D, authentication: windows}\n",
    )
    (item,) = json.loads(cli("drift", "--format", "json", "--tenant", "acme/acme-sweden").out)["tenants"][0][
        "connections"
    ]
    assert (item["status"], item["action"]) == ("pending", "create")  # never applied: git's change


def test_plan_and_apply_call_the_create_of_a_connection_deleted_by_hand_drift(cli: Cli) -> None:
    """drift called it drift and the plan, which the reviewer reads, a plain create (pending:
    as if git had declared a new connection). The saved plan says drift too, and apply of it
    goes through: apply marks its plan the same way."""
    _applied_then_deleted_by_hand(cli)
    planned = cli("plan", "--format", "json", "--tenant", "acme/acme-sweden")
    assert planned.code == 0, planned.err
    ((action,),) = [t["actions"] for t in json.loads(planned.out)["tenants"]]
    assert (action["action"], action["connection"], action.get("status")) == ("create", "Made", "drift")
    text = cli("plan", "--tenant", "acme/acme-sweden")
    assert '+ create "Made"' in text.out and "(drift)" in text.out, text.out
    saved = cli("plan", "--out", "plan.json", "--tenant", "acme/acme-sweden")
    assert saved.code == 0, saved.err
    applied = cli("apply", "--plan", "plan.json", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "Applied 1 action(s)" in applied.out + applied.err
    assert cli("drift", "--tenant", "acme/acme-sweden").code == 0


def test_a_connection_deleted_by_hand_stays_drift_beside_a_company_added_by_hand(cli: Cli) -> None:
    """A company the portal added to another connection of the tenant (a removal to plan, whose
    cascade is listed by planning the tenant again): the deleted connection became "pending"
    in drift, as if git had changed."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n"
        "  - {name: Made, integration: dynamics-gp, server: gp01, database: D, authentication: windows}\n"
        "  - {name: Keep, integration: dynamics-gp, server: gp02, database: D, authentication: windows,"
        " companies: [DAT]}\n",
    )
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    _delete_by_hand(cli, "Made")
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            keep = conn.execute(sa.select(store.connections.c.id).where(store.connections.c.name == "Keep"))
            conn.execute(
                store.companies.insert().values(
                    connection_id=keep.scalar_one(), code="NOR", code_key=spec.identity_key("NOR")
                )
            )
    finally:
        engine.dispose()
    drifted = cli("drift", "--format", "json", "--tenant", "acme/acme-sweden")
    assert drifted.code == 2, drifted.err
    items = {i["connection"]: i for i in json.loads(drifted.out)["tenants"][0]["connections"]}
    assert (items["Made"]["status"], items["Made"]["action"]) == ("drift", "create")
    assert (items["Keep"]["status"], items["Keep"]["action"]) == ("drift", "update")


def test_a_connection_deleted_by_hand_stays_drift_after_the_portal_makes_another(cli: Cli) -> None:
    """SQLite gave a new row the id of the newest one deleted: the connection the portal made
    next took the deleted one's id, which the audit log names, and the deleted connection
    became "pending" (never applied) instead of drift; drift --write kept it in the file."""
    _applied_then_deleted_by_hand(cli)
    cli.write(
        "newcomer.yaml",
        "version: 1\ncustomers:\n  - name: acme\n    tenants:\n      - name: acme-sweden\n"
        "        connections:\n          - {name: Newcomer, managed: false, integration: dynamics-gp, "
        "server: gp02, database: D, authentication: windows}\n",
    )
    assert cli("store", "seed", "newcomer.yaml").code == 0
    drifted = cli("drift", "--format", "json", "--tenant", "acme/acme-sweden")
    assert drifted.code == 2, drifted.err
    items = {i["connection"]: i for i in json.loads(drifted.out)["tenants"][0]["connections"]}
    assert (items["Made"]["status"], items["Made"]["action"]) == ("drift", "create")
    assert cli("drift", "--write", "--tenant", "acme/acme-sweden").code == 2
    written = (cli.root / "tenants/acme/acme-sweden.yaml").read_text(encoding="utf-8")
    assert "name: Made\n" not in written and "name: Newcomer\n" in written


def test_a_portal_rename_to_a_decomposed_name_is_recorded_once_accepted(cli: Cli) -> None:
    """Typed on a Mac, the portal keeps `Résumé` decomposed (NFD); the file, read composed,
    says the same name. The apply after drift --write records it (it recorded nothing, so the
    old name stayed the applied one and could later take the connection over)."""
    env = _imported_and_applied(cli)
    decomposed = unicodedata.normalize("NFD", "Résumé")
    _edit_by_hand(cli, "Visma Oslo", name=decomposed)
    written = cli("drift", "--write")
    assert written.code == 2, written.err
    assert _actions(cli, env) == []
    applied = cli("apply", "--auto-approve", env=env)
    assert applied.code == 0, applied.err
    assert "recorded as applied" in applied.err, applied.err
    assert cli("drift").code == 0


def test_a_swap_of_two_names_in_the_portal_accepted_plans_nothing(cli: Cli) -> None:
    """The portal swapped two connections' names; drift --write wrote the swap into the file.
    The plan matched each entry by the name last applied, not by the name it now has, and
    "renamed back" both, each taking the other's server and companies (their dependents
    cascading): what the files accepted was undone, dependents lost."""
    env = _imported_and_applied(cli)
    _edit_by_hand(cli, "Visma Oslo", name="tmp")
    _edit_by_hand(cli, "NO", name="Visma Oslo")
    _edit_by_hand(cli, "tmp", name="NO")
    assert [a for a in _actions(cli, env) if a[0] == "rename"] == [("rename", "NO"), ("rename", "Visma Oslo")]
    assert cli("drift", "--write").code == 2
    assert _actions(cli, env) == []
    before = cli("store", "dump").out
    applied = cli("apply", "--auto-approve", "--allow-cascade", env=env)
    assert applied.code == 0, applied.err
    assert cli("store", "dump").out == before
    assert cli("drift").code == 0


def test_a_swap_of_two_names_beside_a_change_no_file_can_hold_is_accepted(cli: Cli) -> None:
    """The portal swapped two names and switched a third connection of the tenant to sql
    without a password reference the file could hold: drift --write tried the changes half by
    half, splitting the swap, and refused both renames (each alone leaves two entries of one
    name) with the switch; it exited 0 having accepted nothing it could."""
    gp = (
        "{name: %s, managed: false, integration: dynamics-gp, server: %s, database: D, "
        "authentication: windows}"
    )
    cli.write(
        "live.yaml",
        "version: 1\ncustomers:\n  - name: acme\n    tenants:\n      - name: acme-norway\n"
        "        connections:\n"
        + "".join(
            f"          - {gp % (name, server)}\n" for name, server in [("A", "a"), ("B", "b"), ("C", "c")]
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    assert cli("import").code == 0
    assert cli("apply", "--auto-approve").code == 0
    _edit_by_hand(cli, "A", name="tmp")
    _edit_by_hand(cli, "B", name="A")
    _edit_by_hand(cli, "tmp", name="B")
    _edit_by_hand(cli, "C", authentication="sql", login="osr_reader")
    written = cli("drift", "--write")
    assert written.code == 2, written.err
    assert written.out.splitlines()[:3] == [
        "Wrote tenants/acme/acme-norway.yaml:",
        "  - acme/acme-norway/A: renamed in the portal to 'B': renamed in the file",
        "  - acme/acme-norway/B: renamed in the portal to 'A': renamed in the file",
    ]
    assert "acme/acme-norway/C: the portal's change cannot be written into the file" in written.out
    assert written.out.count("cannot be written") == 1
    assert _actions(cli, {}) == [("update", "C")]


@pytest.mark.parametrize("copy_first", [True, False], ids=["copy-first", "copy-last"])
def test_a_rename_in_the_portal_onto_a_name_the_file_adds_is_planned_back(cli: Cli, copy_first: bool) -> None:
    """The file adds "Copy" with Visma Oslo's fields (and moves Visma Oslo to another server)
    while the portal renames Visma Oslo to Copy: no swap, so the rename is planned back
    (DESIGN §5), whatever the entries' order; it was taken as accepted when Copy came first,
    and Visma Oslo's dependents stayed with "Copy"."""
    env = _imported_and_applied(cli)
    path = cli.root / "tenants/acme/acme-norway.yaml"
    doc = yaml.safe_load(path.read_text())
    oslo = next(c for c in doc["connections"] if c["name"] == "Visma Oslo")
    copy = {**oslo, "name": "Copy"}
    oslo["server"] = "SQL02\\VISMA"
    doc["connections"].insert(0 if copy_first else len(doc["connections"]), copy)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    _edit_by_hand(cli, "Visma Oslo", name="Copy")
    assert sorted(_actions(cli, env)) == [("create", "Copy"), ("rename", "Visma Oslo")]


def _renamed_in_git(
    cli: Cli, old: str, new: str, *, prune: bool = False
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The tenant file with the entry `old` renamed to `new` (previous_names: [old]), and prune
    set if asked: (its path, the document written, the entry)."""
    path = cli.root / "tenants/acme/acme-norway.yaml"
    doc = yaml.safe_load(path.read_text())
    if prune:
        doc["prune"] = True
    entry = next(c for c in doc["connections"] if c["name"] == old)
    entry.update(name=new, previous_names=[old])
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return path, doc, entry


def test_a_git_rename_onto_a_name_a_hand_made_connection_took_is_refused(cli: Cli) -> None:
    """git renames Visma Oslo to "Oslo" (previous_names), the portal renamed it to "Visma Oslo X",
    and someone made an "Oslo" by hand: the hand-made one was adopted and rewritten, and the
    tool's own connection pruned with its dependents."""
    env = _imported_and_applied(cli)
    _renamed_in_git(cli, "Visma Oslo", "Oslo", prune=True)
    _edit_by_hand(cli, "Visma Oslo", name="Visma Oslo X")
    hand = LIVE.split("      - name: acme-sweden")[0].split("          - name: Visma Oslo")[0]
    hand += (
        "          - {name: Oslo, managed: false, integration: dynamics-ax, server: ax9, database: D,"
        " authentication: windows}\n"
    )
    cli.write("hand.yaml", hand)
    assert cli("store", "seed", "hand.yaml", env=env).code == 0
    before = cli("store", "dump").out
    planned = cli("plan", env=env)
    assert planned.code == 1, planned.out
    assert 'the portal renamed it to "Visma Oslo X" and has another connection named "Oslo"' in planned.err
    assert cli("apply", "--auto-approve", "--allow-cascade", env=env).code == 1
    assert cli("store", "dump").out == before


def test_a_git_rename_after_an_accepted_swap_renames_only_that_connection(cli: Cli) -> None:
    """The portal swapped two names, drift --write wrote the swap, and the next pull request
    renamed one entry with previous_names: the plan renamed both, swapping their fields (their
    companies' dependents cascading); and git agreeing with a portal rename beside a hand-made
    connection of the old name was refused."""
    env = _imported_and_applied(cli)
    _edit_by_hand(cli, "Visma Oslo", name="tmp")
    _edit_by_hand(cli, "NO", name="Visma Oslo")
    _edit_by_hand(cli, "tmp", name="NO")
    assert cli("drift", "--write").code == 2
    _renamed_in_git(cli, "Visma Oslo", "Ax")
    planned = json.loads(cli("plan", "--format", "json", env=env).out)
    (action,) = planned["tenants"][0]["actions"]
    assert (action["action"], action["previous_name"], action["connection"]) == ("rename", "Visma Oslo", "Ax")
    assert [c["field"] for c in action["changes"]] == ["name"] and action["cascade"] == []


def test_a_git_rename_of_a_connection_whose_name_the_portal_gave_away_is_refused(cli: Cli) -> None:
    """The portal renamed Visma Oslo to "Visma Oslo (old)" and someone made another "Visma Oslo"
    by hand, while git renamed it to "Oslo" with previous_names: [Visma Oslo]. The previous name
    matched the hand-made one: adopted and rewritten (its dependents removed), and the tool's own
    connection pruned with its dependents. Without previous_names this was refused already."""
    env = _imported_and_applied(cli)
    path, doc, oslo = _renamed_in_git(cli, "Visma Oslo", "Oslo", prune=True)
    _edit_by_hand(cli, "Visma Oslo", name="Visma Oslo (old)")
    cli.write(
        "hand.yaml",
        LIVE.split("      - name: acme-sweden")[0]
        .replace(
            "          - name: Visma Oslo\n            managed: true",
            "          - name: Visma Oslo\n            managed: false",
        )
        .replace('          - name: "NO"', '          - name: "Hand NO"'),
    )
    assert cli("store", "seed", "hand.yaml", env=env).code == 0
    before = cli("store", "dump").out
    planned = cli("plan", env=env)
    assert planned.code == 1, planned.out
    assert 'connection "Visma Oslo": the portal renamed it to "Visma Oslo (old)"' in planned.err
    assert "(made by hand)" in planned.err
    assert cli("apply", "--auto-approve", "--allow-cascade", env=env).code == 1
    assert cli("store", "dump").out == before
    # git agrees with the portal's name (as the refusal suggests): nothing to refuse or change
    oslo["name"] = "Visma Oslo (old)"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    agreed = cli("plan", "--format", "json", env=env)
    assert agreed.code == 0, agreed.err
    assert json.loads(agreed.out)["tenants"][0]["actions"] == []


def test_the_audit_of_a_thousand_tenants_is_read(cli: Cli) -> None:
    """drift --write reads the audit log of every tenant: SQLite refused 1,000 of them in one
    query ("Expression tree is too large"), so the nightly job failed on any fleet that size."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    head = "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n"
    cli.write(
        "tenants/acme/acme-sweden.yaml",
        head
        + "  - {name: Made, integration: dynamics-gp, server: gp01, database: D, authentication: windows}\n",
    )
    assert cli("apply", "--auto-approve", "--tenant", "acme/acme-sweden").code == 0
    keys = [f"other/t{i}" for i in range(1200)] + ["acme/acme-sweden"]
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            (entry,) = store.read_audit(conn, keys, 10)
            named = list(store.audit_names(conn, keys, 10))  # what drift reads, streamed
    finally:
        engine.dispose()
    assert (entry.key, entry.action, entry.connection) == ("acme/acme-sweden", "create", "Made")
    assert named == [("acme/acme-sweden", "create", "Made", entry.connection_id)]


def test_store_dump_is_written_a_customer_at_a_time_as_one_document(cli: Cli) -> None:
    """A fleet's dump held every dependent, its document and its text at once (1.8 GiB at 2,000
    tenants): it is made a customer at a time, and says what the whole document says."""
    from reconciler import fixture, yamlout

    two = LIVE + "  - name: nordlys\n    tenants:\n      - name: nordlys-main\n        connections: []\n"
    cli.write("live.yaml", two)
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            pieces = list(fixture.dump_text(conn, None))
            whole = yamlout.dump(fixture.dump(store.read(conn, None, dependents=True)))
            assert list(fixture.dump_text(conn, ["nordlys/nordlys-main"])) == [
                "version: 1\ncustomers:\n",
                "  - name: nordlys\n    tenants:\n      - name: nordlys-main\n        connections: []\n",
            ]
    finally:
        engine.dispose()
    assert len(pieces) == 3  # the head, then acme, then nordlys
    assert "".join(pieces) == whole
    assert cli("store", "dump").out == whole


def test_store_dump_lists_report_templates_in_one_order_on_every_store(cli: Cli) -> None:
    """The dump ordered report templates as each database's collation sorts (MariaDB's folds
    case and accents): the same store dumped differently by store. It is the plan's order now."""
    names = ["Report 10", "Årsrapport", "Budget", "Report 9", "avdeling", "R01", "R1"]
    templates = "".join(f"          - {{name: {name}}}\n" for name in names)
    cli.write(
        "live.yaml",
        "version: 1\ncustomers:\n  - name: acme\n    tenants:\n      - name: acme-norway\n"
        f"        connections: []\n        report_templates:\n{templates}",
    )
    assert cli("store", "seed", "live.yaml").code == 0
    dumped = cli("store", "dump")
    assert dumped.code == 0, dumped.err
    (tenant,) = yaml.safe_load(dumped.out)["customers"][0]["tenants"]
    assert [t["name"] for t in tenant["report_templates"]] == [
        "avdeling",
        "Budget",
        "R01",
        "R1",
        "Report 9",
        "Report 10",
        "Årsrapport",
    ]


def test_drift_write_of_one_tenant_names_no_variable_another_tenant_file_uses(cli: Cli) -> None:
    """With --tenant, only that tenant's file was read: a connection appended could get the
    variable another tenant's file uses, and one password would then be applied to both."""
    hand = "OSR_ACME_ACME_NORWAY_HAND_PASSWORD"
    cli.write(
        "live.yaml",
        "version: 1\ncustomers:\n  - name: acme\n    tenants:\n      - name: acme-norway\n"
        "        connections:\n          - {name: Hand, managed: false, integration: dynamics-gp, "
        "server: gp01, database: D, authentication: sql, login: u, password: {env: OSR_CANARY}}\n"
        "      - name: acme-sweden\n        connections: []\n",
    )
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-norway.yaml", "version: 1\ncustomer: acme\ntenant: acme-norway\nconnections: []\n"
    )
    sweden = (
        "version: 1\ncustomer: acme\ntenant: acme-sweden\nconnections:\n  - {name: Lund, "
        "integration: dynamics-gp, server: gp02, database: D, authentication: sql, login: u, "
        f"password: {{env: {hand}}}}}\n"
    )
    cli.write("tenants/acme/acme-sweden.yaml", sweden)
    written = cli("drift", "--write", "--tenant", "acme/acme-norway")
    assert written.code == 2, written.out + written.err
    norway = (cli.root / "tenants/acme/acme-norway.yaml").read_text(encoding="utf-8")
    (variable,) = re.findall(r"env: (\w+)", norway)
    assert variable != hand and re.fullmatch(r"OSR_ACME_ACME_NORWAY_HAND_\w+_PASSWORD", variable)
    assert f"    {variable}\n" in written.out
    assert (cli.root / "tenants/acme/acme-sweden.yaml").read_text(encoding="utf-8") == sweden


def test_a_portal_rename_in_case_only_is_drift_and_accepted(cli: Cli) -> None:
    """`Visma Oslo` renamed `VISMA OSLO` in the portal is one name (the same identity), and a
    change a person made there: drift called it pending (a change in git), the plan line had no
    mark, and drift --write accepted nothing."""
    env = _imported_and_applied(cli)
    assert cli("drift", env=env).code == 0
    _edit_by_hand(cli, "Visma Oslo", name="VISMA OSLO")
    drifted = cli("drift", "--format", "json", "--tenant", "acme/acme-norway", env=env)
    assert drifted.code == 2, drifted.both
    (item,) = json.loads(drifted.out)["tenants"][0]["connections"]
    assert (item["status"], item["action"], item["connection"]) == ("drift", "update", "Visma Oslo"), item
    plan = json.loads(cli("plan", "--format", "json", env=env).out)
    (action,) = [a for t in plan["tenants"] for a in t["actions"]]
    assert action["status"] == "drift" and action["changes"] == [
        {"field": "name", "before": "VISMA OSLO", "after": "Visma Oslo"}
    ]
    written = cli("drift", "--write", env=env)
    assert written.code == 2, written.both
    assert "renamed in the portal to 'VISMA OSLO': renamed in the file" in written.out + written.err
    assert "  - name: VISMA OSLO\n" in (cli.root / "tenants/acme/acme-norway.yaml").read_text()
    assert _actions(cli, env) == []
    applied = cli("apply", "--auto-approve", env=env)
    assert applied.code == 0 and "recorded as applied" in applied.err, applied.both
    assert cli("drift", env=env).code == 0
    # The same in git (the file renamed in case, the portal untouched) is pending, not drift.
    path = cli.root / "tenants/acme/acme-norway.yaml"
    path.write_text(path.read_text().replace("name: VISMA OSLO", "name: Visma oslo"))
    pending = cli("drift", "--format", "json", "--tenant", "acme/acme-norway", env=env)
    (item,) = json.loads(pending.out)["tenants"][0]["connections"]
    assert item["status"] == "pending", item


def test_a_portal_rename_to_a_name_the_file_also_declares_is_planned_the_same_in_any_order(
    cli: Cli,
) -> None:
    """Applied as `Visma Oslo`, renamed `Visma Bergen` in the portal, and a file that declares
    both: the connection is `Visma Oslo`'s by id (DESIGN §5), so it is renamed back and `Visma
    Bergen` is created. With the entries in the other order, `Visma Bergen` took the connection
    (its reports with it) and `Visma Oslo` was created empty, the portal rename unreported."""
    env = _imported_and_applied(cli)
    _edit_by_hand(cli, "Visma Oslo", name="Visma Bergen")
    path = cli.root / "tenants/acme/acme-norway.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    (oslo,) = [c for c in data["connections"] if c["name"] == "Visma Oslo"]
    (no,) = [c for c in data["connections"] if c["name"] != "Visma Oslo"]
    bergen = {**oslo, "name": "Visma Bergen", "authentication": "windows"}
    bergen.pop("login", None), bergen.pop("password", None)
    plans = []
    for order in ([oslo, bergen, no], [bergen, oslo, no]):
        path.write_text(yaml.safe_dump({**data, "connections": order}, sort_keys=False), encoding="utf-8")
        plan = cli("plan", "--format", "json", env=env)
        assert plan.code == 0, plan.both
        actions = json.loads(plan.out)["tenants"][0]["actions"]
        plans.append(actions)
        assert [(a["action"], a["connection"], a.get("status")) for a in actions] == [
            ("rename", "Visma Oslo", "drift"),
            ("create", "Visma Bergen", None),
        ], actions
        assert actions[0]["renamed_in_portal"] == {"from": "Visma Oslo", "to": "Visma Bergen"}
        drift = cli("drift", env=env)
        assert drift.code == 2 and "renamed in the portal from" in drift.out, drift.both
    assert plans[0] == plans[1]


def test_drift_write_with_only_what_it_cannot_accept_does_not_say_nothing_to_accept(cli: Cli) -> None:
    """A connection changed in the portal and in git is a conflict, listed; the closing line said
    "Nothing to accept" under it. Exit 0 (no file written), as DESIGN says."""
    env = _imported_and_applied(cli)
    _edit_by_hand(cli, "Visma Oslo", database_name="changed-in-portal")
    path = cli.root / "tenants/acme/acme-norway.yaml"
    path.write_text(path.read_text().replace("database: vbsys", "database: changed-in-git"))
    before = path.read_text()
    written = cli("drift", "--write", env=env)
    assert written.code == 0, written.both
    assert written.out.splitlines()[-2:] == [
        "  - acme/acme-norway/Visma Oslo: conflict: changed in the portal and in git (database); not "
        "accepted: make the file say what it should be, then plan",
        "No tenant file was changed: nothing above could be accepted into the files.",
    ], written.out
    assert path.read_text() == before


@pytest.mark.parametrize(
    "renames",
    [
        [("Visma Oslo", "Zeta"), ("NO", "Visma Oslo")],  # a chain: NO takes the name Oslo left
        [("NO", "Zeta"), ("Visma Oslo", "NO")],  # the other way round
        [("Visma Oslo", "tmp"), ("NO", "Visma Oslo"), ("tmp", "NO")],  # a swap
    ],
    ids=["chain", "other-chain", "swap"],
)
def test_portal_renames_that_take_each_others_names_are_undone(
    cli: Cli, renames: list[tuple[str, str]]
) -> None:
    """The plan renamed both back, and apply failed on the unique name every time (the raw
    driver error): no order of single renames gets past a swap."""
    env = _imported_and_applied(cli)
    ids = _ids(cli)
    for current, new in renames:
        _edit_by_hand(cli, current, name=new)
    assert [a for a, _ in _actions(cli, env)] == ["rename", "rename"]
    applied = cli("apply", "--auto-approve", env=env)
    assert applied.code == 0, applied.both
    assert _actions(cli, env) == []
    assert _ids(cli) == ids  # each name back on its own connection, with its dependents


def _ids(cli: Cli) -> dict[str, int]:
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(store.connections.c.name, store.connections.c.id)).all())
    finally:
        engine.dispose()


def test_a_tenant_file_git_ignores_or_that_lies_outside_the_repository_is_not_committed(
    tmp_path: Path,
) -> None:
    """Not in the commit the audit log records: a tenant file .gitignore'd (git status does not
    list it) was applied under a clean commit, and so were the files of `apply /elsewhere`
    run inside another repository. A tracked file is committed whatever .gitignore says."""
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "tenants/acme").mkdir(parents=True)
    elsewhere.mkdir()
    git(tmp_path, "init", "-q", str(repo))
    (repo / ".gitignore").write_text("tenants/acme/ignored.yaml\ntenants/acme/tracked.yaml\n")
    for name in ("committed", "ignored", "tracked", "untracked"):
        (repo / f"tenants/acme/{name}.yaml").write_text("version: 1\n")
    (elsewhere / "outside.yaml").write_text("version: 1\n")
    git(repo, "add", ".gitignore", "tenants/acme/committed.yaml")
    git(repo, "add", "-f", "tenants/acme/tracked.yaml")
    git(repo, "commit", "-qm", "files")
    for name, expected in (("committed", 0), ("tracked", 0), ("ignored", 1), ("untracked", 1)):
        assert gitrepo.uncommitted(repo, [f"tenants/acme/{name}.yaml"]) == expected, name
    assert gitrepo.uncommitted(repo, [str(elsewhere / "outside.yaml")]) == 1
    every = ["tenants/acme/committed.yaml", "tenants/acme/ignored.yaml", str(elsewhere / "outside.yaml")]
    assert gitrepo.uncommitted(repo, every) == 2


def test_the_audit_log_says_when_what_was_applied_is_not_committed(cli: Cli) -> None:
    """An apply of tenant files edited but not committed recorded HEAD as its commit, whose
    files still said otherwise: the record now says `-dirty`, and the run warns."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    assert cli("import").code == 0
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "imported")
    env = {OSLO: CANARY}
    clean = cli("apply", "--auto-approve", env=env)
    assert clean.code == 0 and "warning" not in clean.err, clean.err
    head = git(cli.root, "rev-parse", "HEAD").strip()
    path = cli.root / "tenants/acme/acme-norway.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("server: ax01\n", "server: ax02\n"))
    edited = cli("apply", "--auto-approve", env=env)
    assert edited.code == 0, edited.err
    assert (
        f"warning: 1 tenant file(s) differ from the commit checked out (not committed); the audit "
        f"log records the commit as {head}-dirty"
    ) in edited.err
    commits = [e["commit"] for e in json.loads(cli("history", "--format", "json").out)]
    assert set(commits) == {head, f"{head}-dirty"}, commits
    shown = cli("history").out  # the text view keeps what the short hash would hide
    assert f"  {head[:12]}-dirty  acme/acme-norway  update" in shown, shown


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_the_audit_log_says_dirty_for_an_edited_file_git_status_is_told_to_skip(cli: Cli, flag: str) -> None:
    """`git update-index --skip-worktree` (or `--assume-unchanged`) makes `git status` trust the
    index for a file: edited, it was applied and recorded under the clean commit, which does
    not hold what was applied. Flagged but as committed, it stays clean."""
    cli.write("live.yaml", LIVE)
    assert cli("store", "seed", "live.yaml").code == 0
    assert cli("import").code == 0
    git(cli.root, "add", "-A")
    git(cli.root, "commit", "-qm", "imported")
    head = git(cli.root, "rev-parse", "HEAD").strip()
    name = "tenants/acme/acme-norway.yaml"
    git(cli.root, "update-index", flag, name)
    assert gitrepo.uncommitted(cli.root, [name]) == 0  # flagged, as committed: clean
    env = {OSLO: CANARY}
    clean = cli("apply", "--auto-approve", env=env)
    assert clean.code == 0 and "warning" not in clean.err, clean.err
    path = cli.root / name
    path.write_text(path.read_text(encoding="utf-8").replace("server: ax01\n", "server: ax02\n"))
    assert git(cli.root, "status", "--porcelain") == ""  # what the check relied on
    edited = cli("apply", "--auto-approve", env=env)
    assert edited.code == 0, edited.err
    assert f"the audit log records the commit as {head}-dirty" in edited.err, edited.err
    commits = [e["commit"] for e in json.loads(cli("history", "--format", "json").out)]
    assert set(commits) == {head, f"{head}-dirty"}, commits
    assert f"  {head[:12]}-dirty  acme/acme-norway  update" in cli("history").out


def test_uncommitted_counts_flagged_files_by_their_content(tmp_path: Path) -> None:
    """Files git status is told to skip count when their content is not the index's, whichever
    flag (both at once too); flagged and as committed, they do not; an edit staged before the
    flag still counts, as git status shows it."""
    flags = {
        "skip": ["--skip-worktree"],
        "assume": ["--assume-unchanged"],
        "both": ["--skip-worktree", "--assume-unchanged"],
        "kept": ["--skip-worktree"],
        "staged": ["--skip-worktree"],
        "plain": [],
    }
    (tmp_path / "tenants/acme").mkdir(parents=True)
    git(tmp_path, "init", "-q", ".")
    for name in flags:
        (tmp_path / f"tenants/acme/{name}.yaml").write_text("version: 1\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "files")
    (tmp_path / "tenants/acme/staged.yaml").write_text("version: 1\n# staged\n")
    git(tmp_path, "add", "tenants/acme/staged.yaml")
    for name, flag in flags.items():
        if flag:
            git(tmp_path, "update-index", *flag, f"tenants/acme/{name}.yaml")
    files = [f"tenants/acme/{name}.yaml" for name in flags]
    assert gitrepo.uncommitted(tmp_path, files) == 1  # staged only
    for name in ("skip", "assume", "both"):
        (tmp_path / f"tenants/acme/{name}.yaml").write_text("version: 1\n# edited\n")
    assert git(tmp_path, "status", "--porcelain") == "M  tenants/acme/staged.yaml\n"
    assert gitrepo.uncommitted(tmp_path, files) == 4
    assert gitrepo.uncommitted(tmp_path / "tenants", ["acme/kept.yaml", "acme/skip.yaml"]) == 1
