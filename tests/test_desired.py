"""Tenant-file rules that the source checks rely on: a server that validates can be connected to."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import catalog, declared, desired, errors, secrets, spec

FILE = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: A
    integration: dynamics-nav
    server: '{server}'
    database: NAV
    authentication: windows
"""


def _load(server: str) -> declared.DesiredTenant:
    path = Path("tenants/acme/acme-norway.yaml")
    settings = secrets.Settings("OSR_", Path(".secrets"))
    return desired.load_file(path, cat=catalog.load(), settings=settings,
                             raw=FILE.format(server=server).encode())


@pytest.mark.parametrize("server", ["SQL01\\VISMA", "sql01.corp.local,1433", "10.0.0.5",
                                    "[fe80::1],1500", "::1", "(local)", "tcp:host,1500"])
def test_server_accepted_is_one_the_sources_can_parse(server: str) -> None:
    (conn,) = _load(server).connections
    assert spec.parse_server(conn.spec.server).host


@pytest.mark.parametrize(("server", "fragment"), [
    ("db:1433", "write host,port with a comma, as SQL Server does: db,1433"),
    ("[1:2]", "'1:2' inside [...] is not an IPv6 address"),
    ("host,99999", "port 99999 is out of range"),
    ("host\\", "write the server as host, host\\instance, host,port"),
])
def test_server_rejected_with_what_to_write(server: str, fragment: str) -> None:
    with pytest.raises(errors.InputError) as exc:
        _load(server)
    (line,) = exc.value.lines()
    assert line.startswith("tenants/acme/acme-norway.yaml:7:13: ") and fragment in line
