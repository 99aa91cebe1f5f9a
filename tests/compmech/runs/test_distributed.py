"""[training] devices in configs, and joining a jax.distributed run from the environment (its checks; the
two-process training itself is tests/predictive_models/test_parallel.py's)."""

from pathlib import Path

import pytest

from compmech.runs.cli import main
from compmech.runs.config import ConfigError, config_from_dict
from compmech.runs.distributed import initialize_from_environment

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny_mess3.toml"
ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID", "SLURM_NTASKS")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_devices_is_all_or_a_positive_integer():
    base = {"process": {"name": "mess3"}}
    assert config_from_dict(base).training["devices"] == "all"
    assert config_from_dict({**base, "training": {"devices": 2}}).train_config().devices == 2
    for bad, message in (
        (True, "devices must be a string or an integer"),
        (0, "devices = 0 is invalid"),
        ("some", "devices = 'some' is invalid.*\"all\""),
    ):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({**base, "training": {"devices": bad}})


def test_one_process_when_the_environment_names_no_run(clean_env):
    assert initialize_from_environment() is False
    clean_env.setenv("SLURM_JOB_ID", "7")
    clean_env.setenv("SLURM_NTASKS", "1")  # one task: nothing to join
    assert initialize_from_environment() is False


@pytest.mark.parametrize(
    "env, message",
    [
        ({"JAX_COORDINATOR_ADDRESS": "localhost:1"}, "JAX_NUM_PROCESSES, JAX_PROCESS_ID not set"),
        (
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"},
            "JAX_NUM_PROCESSES='two' must be an integer >= 1",
        ),
        (
            {"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"},
            "JAX_PROCESS_ID=2 must be below JAX_NUM_PROCESSES=2",
        ),
    ],
)
def test_a_half_described_run_is_one_config_error(clean_env, env, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        initialize_from_environment()


def test_the_cli_names_the_bad_variable_on_one_line(clean_env, capsys, tmp_path):
    clean_env.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1")
    assert main(["run", str(TINY), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compmech: error:") and "JAX_NUM_PROCESSES" in err and "\n" not in err
    assert not (tmp_path / "run").exists()
