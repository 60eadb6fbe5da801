import os

import pytest

from cli import flower
from cli.flower import flower_command, is_loopback, main


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execvpe", lambda file, args, env: calls.append((file, args, env)))
    return calls


def test_command_defaults():
    assert flower_command({}) == ["celery", "-A", "workers", "flower", "--max_tasks=200000", "--persistent=True",
                                  "--db=/tmp/chathooks-flower.db", "--state_save_interval=60000",
                                  "--tasks_columns=name,args,state,received,runtime,worker,uuid",
                                  "--port=5555", "--address=0.0.0.0"]


def test_command_uses_port_and_address_and_keeps_the_password_off_the_command_line():
    command = flower_command({"FLOWER_PORT": "6000", "FLOWER_ADDRESS": "10.0.0.5", "FLOWER_BASIC_AUTH": "ops:pw"})
    assert command[-2:] == ["--port=6000", "--address=10.0.0.5"]
    assert not any("ops:pw" in part for part in command)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com", ""])
def test_non_loopback_addresses(address):
    assert not is_loopback(address)


@pytest.mark.parametrize("env", [
    {}, {"FLOWER_ADDRESS": "0.0.0.0"}, {"FLOWER_ADDRESS": "::"}, {"FLOWER_ADDRESS": "10.0.0.5"},
    {"FLOWER_BASIC_AUTH": ""}, {"FLOWER_BASIC_AUTH": "ops"}, {"FLOWER_BASIC_AUTH": "ops:"},
    {"FLOWER_BASIC_AUTH": "ops:pw,:pw2"},
])
def test_refuses_beyond_localhost_without_basic_auth(env, execs, capsys):
    assert main(env) == 2
    assert execs == []
    assert "FLOWER_BASIC_AUTH" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "localhost"])
def test_loopback_runs_without_basic_auth(address, execs):
    env = {"FLOWER_ADDRESS": address, "FLOWER_PORT": "5566"}
    main(env)
    (file, args, passed_env), = execs
    assert args[:4] == ["celery", "-A", "workers", "flower"] and args[-2:] == ["--port=5566", f"--address={address}"]
    assert file.endswith("celery")
    assert passed_env == env


def test_basic_auth_allows_any_address_and_is_never_printed(execs, capsys):
    main({"FLOWER_ADDRESS": "0.0.0.0", "FLOWER_BASIC_AUTH": "ops:s3cret"})
    (_, args, passed_env), = execs
    assert passed_env["FLOWER_BASIC_AUTH"] == "ops:s3cret"  # Flower reads it from its environment
    assert not any("s3cret" in a for a in args)
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err


def test_exec_failure_is_reported(monkeypatch, capsys):
    def missing(file, args, env):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "execvpe", missing)
    monkeypatch.setattr(flower, "_executable", lambda name: name)
    assert main({"FLOWER_ADDRESS": "127.0.0.1"}) == 1
    assert "cannot run celery" in capsys.readouterr().err
