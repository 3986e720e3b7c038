"""Least privilege in CI (DESIGN §10): the plan key plans, never decrypts, never writes.

Through the console script, on every store of the matrix; on PostgreSQL and MariaDB the plan
key is used with a store login that can only read (a role the test creates).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler import errors, render, secrets, store
from reconciler import plan as p
from tests.conftest import CANARY, CANARY_ENV, RECONCILER, TEST_KEY, Cli, assert_no_canary_in_tree
from tests.test_cli import LIVE, TENANT, dump, seeded

NEW_PASSWORD = "CANARY-pw-7f3e9-rotated"  # contains the canary: never printed either
CHANGED = TENANT.replace("[F0001, F0002]", "[F0001, F0003]").replace("database: vbsys", "database: vbsys2")


def plan_key(cli: Cli) -> str:
    result = cli("store", "plan-key")
    assert result.code == 0, result.err
    key = result.out.strip()
    assert key.startswith(secrets.PLAN_KEY_PREFIX) and TEST_KEY not in result.both
    return key


@pytest.fixture
def readonly_url(cli: Cli) -> Iterator[str]:
    """A store URL whose login can only read (SQLite: the same file; the plan key is the point)."""
    url = cli.env["RECONCILER_STORE"]
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        yield url
        return
    role = f"osr_ro_{os.getpid()}"
    db = sa.make_url(url).database
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    if backend == "postgresql":
        setup = [
            f'DROP ROLE IF EXISTS "{role}"',
            f'CREATE ROLE "{role}" LOGIN',
            f'GRANT CONNECT ON DATABASE "{db}" TO "{role}"',
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
        ]
        teardown = [f'DROP OWNED BY "{role}"', f'DROP ROLE IF EXISTS "{role}"']
    else:
        setup = [
            f"DROP USER IF EXISTS '{role}'@'%'",
            f"CREATE USER '{role}'@'%'",
            f"GRANT SELECT ON `{db}`.* TO '{role}'@'%'",
        ]
        teardown = [f"DROP USER IF EXISTS '{role}'@'%'"]
    with engine.connect() as conn:
        for statement in setup:
            conn.execute(sa.text(statement))
    try:
        yield sa.make_url(url).set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            for statement in teardown:
                conn.execute(sa.text(statement))
        engine.dispose()


def embedded_seeded(cli: Cli, tenant: str = TENANT) -> Cli:
    assert cli("store", "init").code == 0
    seeded(cli, tenant)
    return cli


def pr_env(cli: Cli, key: str, url: str) -> dict[str, str]:
    """What a pull-request job gets: the plan key, a read-only login, no password."""
    return {"RECONCILER_STORE_KEY": "", "RECONCILER_PLAN_KEY": key, "RECONCILER_STORE": url, CANARY_ENV: ""}


def test_plan_key_plans_drifts_and_exports_but_never_writes(cli: Cli, readonly_url: str) -> None:
    seeded(cli, CHANGED)
    key = plan_key(cli)
    env = pr_env(cli, key, readonly_url)
    before = dump(cli)

    planned = cli("plan", "--format", "json", env=env)
    assert planned.code == 0, planned.err
    obj = json.loads(planned.out)
    assert "Visma Oslo: password not compared (env OSR_CANARY not set)" in obj["tenants"][0]["notes"]
    assert obj["summary"]["update"] == 1
    made = cli("plan", "--format", "markdown", "--out", "plan.json", env=env)
    assert made.code == 0, made.err
    assert "The saved plan is valid until " in made.out
    assert cli("drift", env=env).code == 2  # pending: git changed and was not applied
    exported = cli("export", "--tenant", "acme/acme-norway", env=env)
    assert exported.code == 0 and "Visma Oslo" in exported.out

    # With the plan key, every command that writes or decrypts refuses before doing anything,
    # even on a login that could write.
    writes = [
        ("apply", ("apply", "--auto-approve", "--allow-cascade")),
        ("apply", ("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")),
        ("store seed", ("store", "seed", "live.yaml")),
        ("store rotate-key", ("store", "rotate-key")),
        ("store init", ("store", "init")),
        ("store plan-key", ("store", "plan-key")),
        ("unlock", ("unlock", "some-lock")),
    ]
    writable = cli.env["RECONCILER_STORE"]
    for i, (command, args) in enumerate(writes):
        for url in {readonly_url, writable} if i == 0 else {readonly_url}:
            refused = cli(
                *args,
                env={
                    **env,
                    "RECONCILER_STORE": url,
                    CANARY_ENV: CANARY,
                    "RECONCILER_NEW_STORE_KEY": secrets.Keyring.generate().decode(),
                },
            )
            assert refused.code == 1, (args, refused.out)
            assert (
                f"`reconciler {command}` needs RECONCILER_STORE_KEY; RECONCILER_PLAN_KEY can only plan"
            ) in refused.err, refused.err
            assert key not in refused.both
    assert dump(cli) == before


def test_plan_key_cannot_open_any_stored_password(cli: Cli) -> None:
    seeded(cli)
    keyring = secrets.Keyring.for_plans(plan_key(cli))
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tokens = [t for (t,) in conn.execute(sa.select(store.connections.c.password_ct)) if t]
    finally:
        engine.dispose()
    assert tokens
    full = secrets.Keyring(TEST_KEY.encode())
    for token in tokens:
        with pytest.raises(errors.SecretError, match="RECONCILER_PLAN_KEY can only plan"):
            keyring.decrypt(token)
        # Nor as a Fernet key: the plan key is the MAC key, not the encryption key.
        raw = keyring.plan_key().removeprefix(secrets.PLAN_KEY_PREFIX)
        with pytest.raises(errors.SecretError, match="cannot be decrypted"):
            secrets.Keyring(raw.encode()).decrypt(token)
        assert full.decrypt(token) == CANARY
    with pytest.raises(errors.SecretError):
        keyring.encrypt("x")
    # The same fingerprints and the same plan signatures as the store key: no re-keying.
    assert keyring.fingerprint(CANARY) == full.fingerprint(CANARY)
    assert keyring.sign(b"plan") == full.sign(b"plan")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECONCILER_PLAN_KEY", TEST_KEY, "RECONCILER_PLAN_KEY is not a plan key"),
        ("RECONCILER_PLAN_KEY", secrets.PLAN_KEY_PREFIX + "AAAA", "RECONCILER_PLAN_KEY is not a plan key"),
        ("RECONCILER_STORE_KEY", secrets.PLAN_KEY_PREFIX + "AAAA", "RECONCILER_STORE_KEY holds a plan key"),
    ],
)
def test_a_key_in_the_wrong_variable_is_a_clear_error(
    embedded_cli: Cli, variable: str, value: str, message: str
) -> None:
    cli = embedded_seeded(embedded_cli)
    env = {variable: value}
    result = cli("plan", env=env)
    assert result.code == 1 and message in result.err
    assert value not in result.both


def test_plan_key_of_another_store_is_refused(embedded_cli: Cli) -> None:
    cli = embedded_seeded(embedded_cli)
    other = secrets.Keyring(secrets.Keyring.generate()).plan_key()
    result = cli("plan", env={"RECONCILER_PLAN_KEY": other})
    assert result.code == 1
    assert "RECONCILER_PLAN_KEY is not the key of this store" in result.err


def test_saved_plan_without_passwords_applies_a_password_change_on_merge(cli: Cli, readonly_url: str) -> None:
    seeded(cli, CHANGED)
    env = pr_env(cli, plan_key(cli), readonly_url)
    assert cli("plan", "--out", "plan.json", env=env).code == 0
    saved = json.loads((cli.root / "plan.json").read_text())
    assert saved["saved"]["uncompared_passwords"] == ["env OSR_CANARY"]

    # On merge: the store key and the passwords, and the password was changed meanwhile.
    done = cli(
        "apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade", env={CANARY_ENV: NEW_PASSWORD}
    )
    assert done.code == 0, done.err
    assert "password: (sensitive value changed)" in done.out
    assert (
        "acme/acme-norway/Visma Oslo: the password changed; the saved plan could not compare it"
    ) in done.err
    history = json.loads(cli("history", "--format", "json").out)
    assert "password" in history[0]["fields"] and history[0]["connection"] == "Visma Oslo"
    assert cli("plan", "--detailed-exitcode", env={CANARY_ENV: NEW_PASSWORD}).code == 0


def test_a_connection_a_saved_plan_creates_is_not_said_to_have_changed_its_password(
    cli: Cli, readonly_url: str
) -> None:
    """On merge, apply named a connection the plan creates with "the password changed; the
    saved plan could not compare it": a new connection's password changed from nothing."""
    created = CHANGED + (
        "  - {name: Visma Bergen, integration: visma-business, server: sql02, database: vbsys, "
        "authentication: sql, login: osr, password: {env: OSR_BERGEN}, companies: [F0001]}\n"
    )
    seeded(cli, created)
    assert cli("plan", "--out", "plan.json", env=pr_env(cli, plan_key(cli), readonly_url)).code == 0
    done = cli(
        "apply",
        "--plan",
        "plan.json",
        "--auto-approve",
        "--allow-cascade",
        env={CANARY_ENV: NEW_PASSWORD, "OSR_BERGEN": "bergen-pw"},
    )
    assert done.code == 0, done.err
    assert (
        "acme/acme-norway/Visma Bergen: created with the password its reference holds now (the "
        "saved plan was made without the password)."
    ) in done.err
    assert "Visma Bergen: the password changed" not in done.err
    assert (
        "acme/acme-norway/Visma Oslo: the password changed; the saved plan could not compare it" in done.err
    )


def test_a_refused_saved_plan_tells_of_no_create(cli: Cli, readonly_url: str) -> None:
    """On merge without --allow-cascade: apply said a connection was "created with the password
    its reference holds now", then refused the cascade (exit 1) and created nothing."""
    created = CHANGED + (
        "  - {name: Visma Bergen, integration: visma-business, server: sql02, database: vbsys, "
        "authentication: sql, login: osr, password: {env: OSR_BERGEN}, companies: [F0001]}\n"
    )
    seeded(cli, created)
    assert cli("plan", "--out", "plan.json", env=pr_env(cli, plan_key(cli), readonly_url)).code == 0
    env = {CANARY_ENV: NEW_PASSWORD, "OSR_BERGEN": "bergen-pw"}
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", env=env)
    assert refused.code == 1 and "--allow-cascade" in refused.err, refused.err
    assert "created" not in refused.err and "accepts that change" not in refused.err, refused.err
    assert "Visma Bergen" not in cli("store", "dump").out


def test_saved_plan_without_passwords_refuses_every_other_difference(cli: Cli, readonly_url: str) -> None:
    seeded(cli, CHANGED)
    env = pr_env(cli, plan_key(cli), readonly_url)
    assert cli("plan", "--out", "plan.json", env=env).code == 0
    cli.write("tenants/acme/acme-norway.yaml", CHANGED.replace("login: osr", "login: other"))
    before = dump(cli)
    refused = cli(
        "apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade", env={CANARY_ENV: NEW_PASSWORD}
    )
    assert refused.code == 1
    assert "tenants/acme/acme-norway.yaml changed since the plan was made" in refused.err
    assert dump(cli) == before


def test_saved_plan_without_passwords_refuses_a_live_change(cli: Cli) -> None:
    seeded(cli, CHANGED)
    env = pr_env(cli, plan_key(cli), cli.env["RECONCILER_STORE"])
    assert cli("plan", "--out", "plan.json", env=env).code == 0
    cli.write("live.yaml", LIVE.replace("login: osr", "login: by-hand"))
    assert cli("store", "seed", "live.yaml").code == 0
    before = dump(cli)
    refused = cli(
        "apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade", env={CANARY_ENV: NEW_PASSWORD}
    )
    assert refused.code == 1 and "the live store changed since the plan was made" in refused.err
    assert dump(cli) == before


def test_apply_names_every_missing_password_before_it_plans(cli: Cli) -> None:
    second = (
        "  - name: Other\n    integration: dynamics-nav\n    server: nav\n    database: NAV\n"
        "    authentication: sql\n    login: l\n    password: {env: OSR_OTHER}\n"
    )
    seeded(cli, TENANT + second)
    before = dump(cli)
    refused = cli("apply", "--auto-approve", env={CANARY_ENV: ""})
    assert refused.code == 1
    assert refused.out == ""  # refused before planning: no plan printed
    for name in (
        "Visma Oslo needs the password from env OSR_CANARY, which is not set",
        "Other needs the password from env OSR_OTHER, which is not set",
    ):
        assert f"acme/acme-norway/{name}" in refused.err
    assert dump(cli) == before


def test_markdown_says_what_lets_the_apply_through_in_the_pipelines_words(embedded_cli: Cli) -> None:
    cli = embedded_seeded(embedded_cli, CHANGED)
    hint = "add the label reconciler:allow-cascade before merging"
    result = cli("plan", "--format", "markdown", env={"RECONCILER_HINT_ALLOW_CASCADE": hint})
    assert result.code == 0
    assert (
        "`apply` refuses this plan without `--allow-cascade`. To let the apply through: "
        f"{render.md_text(hint)}." in result.out
    )
    plain = cli("plan", "--format", "markdown")
    assert "To let the apply through" not in plain.out and "valid until" not in plain.out


def test_render_markdown_takes_the_phrasing_as_data() -> None:
    plan = p.Plan((), 0, ("3 connections would be deleted",))
    hint = "add <b>the</b> label reconciler:allow-mass-delete"
    text = render.markdown(plan, hints={"--allow-mass-delete": hint}, expires="2030-01-01 00:00 UTC")
    assert f"To let the apply through: {render.md_text(hint)}." in text and "<b>" not in text
    assert (
        f"The saved plan is valid until {render.md_text('2030-01-01 00:00 UTC')}; after that, plan again."
    ) in text
    assert "To let the apply through" not in render.markdown(plan)


def test_debug_prints_the_redacted_traceback_to_stderr(embedded_cli: Cli, tmp_path: Path) -> None:
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import os\nfrom reconciler import stages\n"
        "def _broken(*a, **k):\n    raise RuntimeError('boom PWD=' + os.environ['OSR_CANARY'] + ';')\n"
        "stages.each_valid = _broken\n"
    )
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        env = {**embedded_cli.env, "PYTHONPATH": str(inject), **extra}
        return subprocess.run(
            [RECONCILER, "validate"],
            cwd=embedded_cli.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    loud = run(RECONCILER_DEBUG="1")
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr and "RuntimeError: boom PWD=***;" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("error: internal error (RuntimeError)")
    quiet = run()
    assert quiet.returncode == 1 and "boom" not in quiet.stderr and len(quiet.stderr.splitlines()) == 1
    assert CANARY not in loud.stdout + loud.stderr + quiet.stdout + quiet.stderr
    for log in embedded_cli.root.parent.glob("reconciler-debug-*.log"):
        assert CANARY not in log.read_text(encoding="utf-8")
        log.unlink()
    assert_no_canary_in_tree(embedded_cli.root.parent)
