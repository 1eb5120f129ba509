"""What an operator sees when the config or the command line is wrong: every problem at once, one line each,
naming its key, and a non-zero exit — never a traceback, never a server that starts on something else."""

import os
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import write_config
from tests.gateway._server import cli

PREFIX = "commerce-gateway: config error: "


def _without(*names: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}


def test_every_problem_is_reported_at_once_each_naming_its_key(tmp_path: Path) -> None:
    source = {"type": "custom", "secrets": ["${CG_TEST_UNSET_SECRET}"], "signature": {"scheme": "hmac"}}
    config = write_config(
        tmp_path,
        api_keys=["${CG_TEST_UNSET_KEY}"],
        currency="XYZ",
        worker={"lease_secs": 1},
        log_levl="info",
        sources={"shop": {"type": "shopify", "secrets": ["s"], "shop_domian": "x"}, "custom": source},
    )
    result = cli("--config", str(config), "check-config", env=_without("CG_TEST_UNSET_KEY", "CG_TEST_UNSET_SECRET"))
    assert (result.returncode, result.stdout) == (2, "")
    assert sorted(result.stderr.splitlines()) == sorted(
        PREFIX + line
        for line in (
            "api_keys[0]: environment variable CG_TEST_UNSET_KEY is not set",
            "sources.custom.secrets[0]: environment variable CG_TEST_UNSET_SECRET is not set",
            "currency: 'XYZ' is not an ISO 4217 currency code",
            "worker.lease_secs: unknown key",
            "log_levl: unknown key",
            "sources.shop.shop_domian: unknown key",
            "sources.custom: key 'mapping' is required for type custom",
        )
    )


def test_what_adapters_refuse_is_reported_for_every_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    standard = {"signature": {"scheme": "standard-webhooks"}, "mapping": {"orderId": "id", "totalCents": "t"}}
    standard["mapping"] |= {"currency": "c", "customer": {"email": "e"}}
    sources = {name: {"type": "custom", "secrets": ["whsec_not*base64"], **standard} for name in ("first", "second")}
    assert main(["--config", str(write_config(tmp_path, sources=sources)), "check-config"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{PREFIX}sources.{name}: secrets[0]: not a Standard Webhooks secret (whsec_ followed by base64)"
        for name in ("first", "second")
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda tmp: (tmp / "hostname").write_text("x") and tmp / "hostname" / "gateway.db",
            "database: {tmp}/hostname is a file, so no folder can be created under it for {tmp}/hostname/gateway.db",
            id="under-a-file",
        ),
        pytest.param(
            lambda tmp: (tmp / "data").mkdir() or tmp / "data",
            "database: {tmp}/data is a folder; name the database file inside it (e.g. {tmp}/data/gateway.db)",
            id="a-folder",
        ),
    ],
)
def test_a_database_path_that_cannot_work_fails_check_config(tmp_path: Path, make: object, message: str) -> None:
    database = make(tmp_path)  # type: ignore[operator]
    result = cli("--config", str(write_config(tmp_path, database=str(database))), "check-config")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == PREFIX + message.format(tmp=tmp_path) + "\n"
    # serve refuses it the same way, before opening anything.
    served = cli("--config", str(write_config(tmp_path, database=str(database))), "serve", "--port", "1")
    assert (served.returncode, served.stderr) == (2, result.stderr)


def test_config_that_is_a_folder_is_one_error_line(tmp_path: Path) -> None:
    result = cli("--config", str(tmp_path), "check-config")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{PREFIX}config file {tmp_path} is a folder, not a file\n"


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path: Path, port: str) -> None:
    result = cli("--config", str(write_config(tmp_path)), "serve", "--port", port)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        f"commerce-gateway serve: error: argument --port: {port!r} is not a TCP port (1-65535)"
    )
    assert not (tmp_path / "data").exists()


def test_try_mapping_needs_only_its_own_source(tmp_path: Path) -> None:
    mapping = {"orderId": "id", "totalCents": "total", "currency": "currency", "customer": {"email": "email"}}
    sources = {
        "shop": {"type": "shopify", "secrets": ["${CG_TEST_UNSET_SHOPIFY}"]},
        "mine": {"type": "custom", "secrets": ["${CG_TEST_MINE}"], "signature": {"scheme": "hmac", "header": "X-S"}}
        | {"mapping": mapping},
    }
    config = write_config(tmp_path, api_keys=["${CG_TEST_UNSET_KEY}"], sources=sources)
    payload = tmp_path / "order.json"
    payload.write_text('{"id": "A-1", "total": 1250, "currency": "USD", "email": "ann@example.com"}')
    env = _without("CG_TEST_UNSET_SHOPIFY", "CG_TEST_UNSET_KEY") | {"CG_TEST_MINE": "mine-secret"}
    result = cli("--config", str(config), "try-mapping", "mine", str(payload), env=env)
    assert result.returncode == 0, result.stderr
    # Its own secret is still needed.
    result = cli("--config", str(config), "try-mapping", "mine", str(payload), env=_without("CG_TEST_MINE"))
    assert (result.returncode, result.stderr) == (
        2,
        f"{PREFIX}sources.mine.secrets[0]: environment variable CG_TEST_MINE is not set\n",
    )
