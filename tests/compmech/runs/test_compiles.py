"""The persistent compilation cache and the compile count (compmech.runs.compiles)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from compmech.runs.compiles import CompileCount, cache_dir

_SCRIPT = """
import json, sys
from compmech.runs.compiles import CompileCount, enable_persistent_cache
enable_persistent_cache()
import jax, jax.numpy as jnp
with CompileCount() as c:
    f = jax.jit(lambda x: jnp.tanh(x) @ x.T + 1.0)
    f(jnp.ones((7, 5))).block_until_ready()
print(json.dumps(c.stats.to_json()))
"""


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPMECH_XLA_CACHE", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.setenv("COMPMECH_XLA_CACHE", "off")
    assert cache_dir() is None
    monkeypatch.delenv("COMPMECH_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "compmech" / "xla"


def test_a_new_program_counts_as_compiled_and_a_seen_one_does_not():
    import secrets

    import jax
    import jax.numpy as jnp

    c = 1.0 + secrets.randbelow(2**20) / 2**21  # a constant of its own: a program no cache can hold yet
    f = jax.jit(lambda x: jnp.sin(x) * c - x)
    with CompileCount() as first:
        f(jnp.ones(11)).block_until_ready()
    with CompileCount() as again:
        f(jnp.ones(11)).block_until_ready()  # in-memory cache: nothing new
    assert first.stats.requests >= 1 and first.stats.compiled >= 1
    assert again.stats.requests == 0


def test_a_second_process_loads_its_programs_from_the_persistent_cache(tmp_path):
    env = {**os.environ, "COMPMECH_XLA_CACHE": str(tmp_path / "xla"), "JAX_PLATFORMS": "cpu"}
    root = Path(__file__).resolve().parents[3]
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _SCRIPT], env=env, cwd=root, check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(2)
    ]
    assert runs[0]["compiled"] >= 1 and runs[0]["cache_hits"] == 0
    assert runs[1]["compiled"] == 0 and runs[1]["cache_hits"] == runs[0]["requests"]
    assert any((tmp_path / "xla").iterdir())
