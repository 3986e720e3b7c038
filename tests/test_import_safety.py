"""reconciler import writes only what is safe to apply (DESIGN §9): password variables new to the
fleet, files validate accepts, every file or none, companies in natural order.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from reconciler import envnames
from tests.conftest import ALWAYS_PROCESS, CANARY, RECONCILER, Cli

OSLO = "OSR_ACME_MAIN_GP_OSLO_PASSWORD"


def _conn(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "managed": False,
        "integration": "dynamics-gp",
        "server": "gp01",
        "database": "GP",
        "authentication": "sql",
        "login": "osr_reader",
        "password": "demo-pw",
        "companies": ["S1"],
        **extra,
    }


def _seed(cli: Cli, tenants: dict[str, list[dict[str, object]]]) -> None:
    """A portal whose tenants are given by key (customer/tenant) with their connections."""
    customers: dict[str, list[dict[str, object]]] = {}
    for key, connections in tenants.items():
        customer, tenant = key.split("/")
        customers.setdefault(customer, []).append({"name": tenant, "connections": connections})
    fixture = {"version": 1, "customers": [{"name": c, "tenants": t} for c, t in customers.items()]}
    cli.write("live.yaml", yaml.safe_dump(fixture, sort_keys=False))
    seeded = cli("store", "seed", "live.yaml")
    assert seeded.code == 0, seeded.err


def _variables(path: Path) -> dict[str, str]:
    """connection name -> the password variable the tenant file at path references."""
    connections = yaml.safe_load(path.read_text(encoding="utf-8"))["connections"]
    return {c["name"]: c["password"]["env"] for c in connections if "password" in c}


def _actions(cli: Cli, env: dict[str, str]) -> list[tuple[str, str]]:
    result = cli("plan", "--format", "json", env=env)
    assert result.code == 0, result.err
    return [(a["action"], a["connection"]) for t in json.loads(result.out)["tenants"] for a in t["actions"]]


# ---------------------------------------------------------------------------------------------
# Password variables unique across the fleet


def test_password_variables_a_taken_variable_gets_a_stable_suffix_and_the_rest_stay() -> None:
    names = ["Oslo", "Bergen", "Visma Oslo", "Visma-Oslo"]
    plain = envnames.password_variables("acme", "main-gp", names, "OSR_")
    first = envnames.password_variables("acme", "main-gp", names, "OSR_", taken={OSLO})
    again = envnames.password_variables("acme", "main-gp", list(reversed(names)), "OSR_", taken=[OSLO])
    assert first == again
    assert re.fullmatch(r"OSR_ACME_MAIN_GP_OSLO_[0-9A-F]{6}_PASSWORD", first["Oslo"])
    assert {n: v for n, v in first.items() if n != "Oslo"} == {n: v for n, v in plain.items() if n != "Oslo"}
    assert plain["Oslo"] == OSLO


def test_password_variables_of_tenants_whose_words_run_together_all_differ() -> None:
    """A suffix of the name alone would be the same for the second and the third."""
    taken: set[str] = set()
    for customer, tenant in (("a-b-c", "d"), ("a-b", "c-d"), ("a", "b-c-d")):
        (variable,) = envnames.password_variables(customer, tenant, ["X"], "OSR_", taken=taken).values()
        assert variable not in taken
        taken.add(variable)
    assert "OSR_A_B_C_D_X_PASSWORD" in taken and len(taken) == 3


def test_import_gives_two_tenants_of_one_customer_their_own_variables(cli: Cli) -> None:
    """acme/main "GP Oslo" and acme/main-gp "Oslo" were both given OSR_ACME_MAIN_GP_OSLO_PASSWORD:
    one password overwrote the other on apply."""
    _seed(
        cli,
        {
            "acme/main": [_conn("GP Oslo", managed=True, password={"env": "OSR_CANARY"})],
            "acme/main-gp": [_conn("Oslo", managed=True, password="other-pw")],
        },
    )
    imported = cli("import")
    assert imported.code == 0, imported.err
    main = _variables(cli.root / "tenants/acme/main.yaml")["GP Oslo"]
    main_gp = _variables(cli.root / "tenants/acme/main-gp.yaml")["Oslo"]
    assert main == OSLO and main_gp != main
    # each with whose password it is: the second's digest suffix tells a person nothing
    assert f'  {main}  # acme/main "GP Oslo"\n  {main_gp}  # acme/main-gp "Oslo"\n' in imported.out
    assert _actions(cli, {main: CANARY, main_gp: "other-pw"}) == []


def test_export_names_no_variable_another_tenant_file_uses_and_keeps_its_own(cli: Cli) -> None:
    """export prints a tenant file to start one: its variables must be none of the other files'
    (as import's), but its own file's, which its connections keep, are not taken."""
    _seed(
        cli,
        {
            "acme/main": [_conn("GP Oslo", managed=True, password={"env": "OSR_CANARY"})],
            "acme/main-gp": [_conn("Oslo", managed=True, password="other-pw")],
        },
    )
    assert cli("import", "--tenant", "acme/main").code == 0  # acme/main.yaml names OSLO
    assert _variables(cli.root / "tenants/acme/main.yaml")["GP Oslo"] == OSLO
    exported = cli("export", "--tenant", "acme/main-gp")
    assert exported.code == 0, exported.err
    (variable,) = [c["password"]["env"] for c in yaml.safe_load(exported.out)["connections"]]
    assert variable != OSLO and re.fullmatch(r"OSR_ACME_MAIN_GP_OSLO_[0-9A-F]{6}_PASSWORD", variable)
    own = cli("export", "--tenant", "acme/main")
    assert [c["password"]["env"] for c in yaml.safe_load(own.out)["connections"]] == [OSLO]


def test_import_names_no_variable_a_file_in_the_repository_references(embedded_cli: Cli) -> None:
    """Valid files give their references; a file that does not load gives every word that could
    be one (a reference missed would be shared once the file is fixed), and import still runs."""
    _seed(embedded_cli, {"acme/main-gp": [_conn("Oslo"), _conn("Bergen"), _conn("Tromso")]})
    declared = {k: v for k, v in _conn("GP Oslo", password={"env": OSLO}).items() if k != "managed"}
    embedded_cli.write(
        "tenants/acme/main.yaml",
        yaml.safe_dump({"version": 1, "customer": "acme", "tenant": "main", "connections": [declared]}),
    )
    broken = "OSR_ACME_MAIN_GP_BERGEN_PASSWORD"
    embedded_cli.write(
        "tenants/acme/broken.yaml", f"version: 1\nconnections: [{{password: {{env: {broken}}}\n"
    )
    assert embedded_cli("validate", "tenants/acme/main.yaml").code == 0
    imported = embedded_cli("import")
    assert imported.code == 0, imported.err
    variables = _variables(embedded_cli.root / "tenants/acme/main-gp.yaml")
    assert variables["Tromso"] == "OSR_ACME_MAIN_GP_TROMSO_PASSWORD"
    assert variables["Oslo"] not in (OSLO, broken) and variables["Bergen"] not in (OSLO, broken)


def test_import_refuses_while_a_tenant_file_cannot_be_read(embedded_cli: Cli) -> None:
    _seed(embedded_cli, {"acme/main-gp": [_conn("Oslo")]})
    (embedded_cli.root / "tenants/acme").mkdir(parents=True)
    (embedded_cli.root / "tenants/acme/gone.yaml").symlink_to("nowhere.yaml")
    imported = embedded_cli("import")
    assert imported.code == 1
    assert (
        "tenants/acme/gone.yaml: cannot read: No such file or directory; the password variables "
        "of every tenant file are read"
    ) in imported.err
    assert not (embedded_cli.root / "tenants/acme/main-gp.yaml").exists()


# ---------------------------------------------------------------------------------------------
# Only files validate accepts

REFUSED = [
    ({"server": "my host"}, "server: write the server as host, host\\instance, host,port or an IP"),
    ({"server": "host:1433"}, "server: write host,port with a comma, as SQL Server does"),
    ({"server": "s,99999"}, "server: port 99999 is out of range"),
    ({"server": "s "}, "server: write the server as host"),
    ({"integration": "unknown-erp"}, "integration: unknown integration 'unknown-erp'"),
    ({"login": "a\tb"}, "login: only printable characters"),
    ({"login": "x" * 150}, "login: is 150 characters, over the limit of 128"),
    ({"login": None}, "connection: authentication: sql needs a login"),
    ({"authentication": "windows", "password": None}, "connection: authentication: windows takes no login"),
    (
        {"voucher": {"provider": "visma-document-center", "document_center_path": "\\\\fs01\\vdc"}},
        "voucher: Microsoft Dynamics GP has no voucher step",
    ),
]


def test_import_writes_a_name_the_portal_keeps_decomposed_as_long_as_its_composed_form(cli: Cli) -> None:
    """`Région` and 60 × `é`, kept decomposed (NFD: 128 code points) by the portal: import
    refused the tenant, "over 100 characters, which a tenant file cannot hold". Composed, it
    is 67, and the same name."""
    import unicodedata

    composed = "Région " + "é" * 60
    _seed(cli, {"acme/main": [_conn(unicodedata.normalize("NFD", composed))]})
    imported = cli("import")
    assert imported.code == 0, imported.err
    assert cli("validate").code == 0


def test_import_refuses_a_sql_connection_without_a_password_and_writes_nothing(cli: Cli) -> None:
    """Its file referenced a password variable to set to "the current password", which does not
    exist: set, the plan changed the portal's password; unset, apply refused. Never only adopt."""
    nopw = {k: v for k, v in _conn("No password").items() if k != "password"}
    _seed(cli, {"acme/good": [_conn("Good")], "acme/main": [_conn("Fine"), nopw]})
    imported = cli("import")
    assert imported.code == 1, imported.out
    assert imported.err == (
        'error: acme/main/No password: the portal\'s connection "No password" signs in with SQL '
        "authentication and has no password, which a tenant file cannot hold; correct it in the "
        "portal, then import again\n"
    )
    assert not (cli.root / "tenants").exists()
    exported = cli("export", "--tenant", "acme/main")
    assert exported.code == 1 and exported.out == ""
    assert exported.err == imported.err.replace("then import again", "then export again")


@pytest.mark.parametrize(
    ("values", "said"), REFUSED, ids=[r[1].split(":")[0] + str(i) for i, r in enumerate(REFUSED)]
)
def test_import_refuses_portal_values_validate_refuses_and_writes_nothing(
    cli: Cli, values: dict[str, object], said: str
) -> None:
    bad = {k: v for k, v in {**_conn("Bad"), **values}.items() if v is not None}
    _seed(cli, {"acme/good": [_conn("Good")], "acme/main": [_conn("Fine"), bad]})
    imported = cli("import")
    assert imported.code == 1, imported.out
    assert f"error: acme/main/Bad: validate would refuse the portal's {said}" in imported.err
    lines = imported.err.splitlines()
    assert all(line.startswith("error: acme/main/Bad: ") for line in lines), imported.err
    assert all(line.endswith("; correct it in the portal, then import again") for line in lines)
    assert ".yaml" not in imported.err
    assert not (cli.root / "tenants").exists()
    # export prints no file validate refuses either: the same problems, nothing on stdout
    exported = cli("export", "--tenant", "acme/main")
    assert exported.code == 1 and exported.out == ""
    assert exported.err == imported.err.replace("then import again", "then export again")


def test_export_and_import_refuse_names_no_tenant_file_can_hold(cli: Cli) -> None:
    """export printed `name: "Oslo\\nGP"`, `'Trail '` and a company `'C2 '` with exit 0: a file that
    validate refuses, where import refused the same tenant (DESIGN §9). Two names that look the
    same are no file either."""
    _seed(
        cli,
        {
            "acme/main": [
                _conn("Oslo\nGP", companies=["C1", "C2 "]),
                _conn("Trail "),
            ]
        },
    )
    exported = cli("export", "--tenant", "acme/main")
    assert exported.code == 1 and exported.out == ""
    assert sorted(exported.err.splitlines()) == [
        'error: acme/main/Oslo\\nGP: the portal\'s company "C2 " has white space at the start or end, '
        "which a tenant file cannot hold; correct it in the portal, then export again",
        'error: acme/main/Oslo\\nGP: the portal\'s connection "Oslo\\nGP" contains a line break (U+000A), '
        "which a tenant file cannot hold; correct it in the portal, then export again",
        'error: acme/main/Trail : the portal\'s connection "Trail " has white space at the start or end, '
        "which a tenant file cannot hold; correct it in the portal, then export again",
    ]
    imported = cli("import")
    assert imported.code == 1 and not (cli.root / "tenants").exists()
    assert imported.err == exported.err.replace("then export again", "then import again")
    _seed(cli, {"acme/alike": [_conn("Visma Oslo"), _conn("Visma \u041eslo")]})
    alike = cli("export", "--tenant", "acme/alike")
    assert alike.code == 1 and alike.out == ""
    assert "'Visma Оslo' looks the same as 'Visma Oslo'" in alike.err, alike.err
    assert alike.err.rstrip().endswith("correct it in the portal, then export again"), alike.err


# ---------------------------------------------------------------------------------------------
# Every file or none


def test_import_that_cannot_write_one_file_writes_none(embedded_cli: Cli) -> None:
    """It wrote tenants/a/x.yaml, then said "nothing was written"."""
    _seed(embedded_cli, {"a/x": [], "c/t": []})
    embedded_cli.write("tenants/c", "a file where the folder of customer c would be\n")
    imported = embedded_cli("import")
    assert imported.code == 1
    assert "tenants/c/t.yaml: cannot be looked at (Not a directory); nothing was written" in imported.err
    assert sorted(p.name for p in (embedded_cli.root / "tenants").iterdir()) == ["c"]


def test_import_whose_write_fails_after_the_first_file_removes_what_it_made(embedded_cli: Cli) -> None:
    """A link to no folder passes every check before the first write and fails at its own."""
    _seed(embedded_cli, {"a/x": [], "c/t": []})
    (embedded_cli.root / "tenants").mkdir()
    (embedded_cli.root / "tenants/c").symlink_to("nowhere")
    imported = embedded_cli("import")
    assert imported.code == 1
    assert "tenants/c/t.yaml: cannot be written (File exists); nothing was written" in imported.err
    assert sorted(p.name for p in (embedded_cli.root / "tenants").iterdir()) == ["c"]


# ---------------------------------------------------------------------------------------------
# Companies in natural order


def test_import_lists_companies_in_natural_order_and_plans_nothing(cli: Cli) -> None:
    _seed(
        cli,
        {
            "acme/main": [
                _conn("Oslo", managed=True, password={"env": "OSR_CANARY"}, companies=["S11", "S2", "S1"])
            ]
        },
    )
    assert cli("import").code == 0
    text = (cli.root / "tenants/acme/main.yaml").read_text(encoding="utf-8")
    assert "    companies: [S1, S2, S11]\n" in text
    assert _actions(cli, {"OSR_ACME_MAIN_OSLO_PASSWORD": CANARY}) == []


def test_import_whose_output_cannot_be_shown_still_says_it_wrote(cli: Cli) -> None:
    """`import > /dev/full` wrote the files, then exited 1 (which says nothing was written):
    now exit 0, and stderr says the files were written."""
    _seed(cli, {"acme/main": [_conn("Good")]})
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [RECONCILER, "import"], cwd=cli.root, env=cli.env, stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "warning: cannot write to standard output (No space left on device); send it where there "
        "is room; 1 tenant file(s) were written under tenants\n"
    )
    assert (cli.root / "tenants/acme/main.yaml").is_file()


# ---------------------------------------------------------------------------------------------
# Interrupts while files are written


@pytest.mark.skipif(ALWAYS_PROCESS, reason="the interrupt is sent from inside this process")
@pytest.mark.parametrize("when", ["at the first write", "after the writes"])
@pytest.mark.parametrize("command", ["import", "drift --write"])
def test_an_interrupt_while_files_are_written_neither_stops_them_nor_belies_them(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str, when: str
) -> None:
    """Ctrl-C among the renames stopped drift --write halfway (some files written) and said
    "interrupted; nothing was changed", exit 1; one after import's writes said the same with
    every file written (DESIGN §8). From the first write on, the run finishes and says what it
    wrote, as an apply does after its commit."""
    from reconciler import atomic, importer
    from reconciler.commands import drift_write

    keys = ("a/x", "b/y", "c/z")
    _seed(embedded_cli, {key: [_conn(f"Portal {key[0]}")] for key in keys})
    if command == "drift --write":  # files without the portal's connections: each is appended
        for key in keys:
            customer, tenant = key.split("/")
            embedded_cli.write(
                f"tenants/{key}.yaml",
                f"version: 1\ncustomer: {customer}\ntenant: {tenant}\nprune: false\nconnections: []\n",
            )
    before = {p: p.read_text() for p in (embedded_cli.root / "tenants").rglob("*.yaml")}

    def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)

    if when == "at the first write":
        write = atomic.write
        calls: list[Path] = []

        def interrupted_write(path: Path, text: str, *, exclusive: bool) -> bool:
            if not calls:
                interrupt()
            calls.append(path)
            return write(path, text, exclusive=exclusive)

        monkeypatch.setattr(atomic, "write", interrupted_write)
    else:
        module, name = (
            (importer, "_create_all") if command == "import" else (drift_write.atomic, "replace_all")
        )
        done = getattr(module, name)

        def then_interrupted(*args: object) -> object:
            result = done(*args)
            interrupt()
            return result

        monkeypatch.setattr(module, name, then_interrupted)
    result = embedded_cli(*command.split())
    assert result.code == (0 if command == "import" else 2), result.both
    assert "nothing was changed" not in result.err
    files = {p: p.read_text() for p in (embedded_cli.root / "tenants").rglob("*.yaml")}
    assert len(files) == 3 and all(files[p] != before.get(p) for p in files), result.both
    assert all("Portal" in text for text in files.values())
