"""Benchmark: compmech's training step for the paper's Mess3 model beside the same model in plain PyTorch.

    pip install -e ".[bench]"      # PyTorch, for this benchmark only (nothing else imports it)
    python benchmarks/bench_torch.py [--batch-sizes 64 512] [--rounds 7] [--seconds 3] [--threads 2]

Both sides train the model of `compmech/experiments/mess3.toml` (4 pre-LayerNorm blocks, d_model 64, one head of 8, ReLU
MLP 256, context 10, learned positions, untied unembedding, GPT-2 initialisation) with the same optimizer
(global-norm clipping at 1, Adam, linear warm-up then cosine decay, lr 3e-3) on the same Mess3 token blocks:

- compmech: `predictive_models.training`'s jitted step, ``steps_per_call`` optimizer steps fused in one
  ``lax.scan`` (exactly what `compmech run` calls, with its default ``micro_batch = "auto"``: batch 512 in
  micro-batches of 128 on a CPU; the blocks are drawn beforehand instead of on the device);
- PyTorch: eager, ``torch.optim.Adam(fused=True)``, ``clip_grad_norm_``, ``LambdaLR``; ``--threads`` threads and
  ``OMP_WAIT_POLICY=PASSIVE`` (so its idle OpenMP threads do not spin while compmech runs); attention written
  with einsums like compmech's (``--torch-attention sdpa``: ``F.scaled_dot_product_attention``, causal).

Rounds alternate (compmech first on even rounds, PyTorch first on odd), each side training the same number of
steps on the same tokens; the figures are medians over rounds of tokens/s and of CPU seconds per step (the
process's user + system time, all threads). Compile time and PyTorch's first steps are warm-up, not timed.
On a shared machine compare the ratios of one run. The last line is
``compmech/pytorch tokens/s: batch 64 <r>x, batch 512 <r>x``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import tomllib
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - the message is the point
    sys.exit(
        "bench_torch.py needs PyTorch, an optional benchmark-only dependency: install it with\n"
        '    pip install -e ".[bench]"\n'
        "(on a CPU-only machine the CPU build is smaller: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu)"
    )

import jax  # noqa: E402
import numpy as np  # noqa: E402

from hmm_processes import get_process, sample  # noqa: E402
from predictive_models import TrainConfig, make_config  # noqa: E402
from predictive_models.models import init_params  # noqa: E402
from predictive_models.parallel import put, training_mesh  # noqa: E402
from predictive_models.training import (  # noqa: E402
    _keys,
    _optimizer_and_chunk,
    _optimizer_settings,
    learning_rate_schedule,
    resolve_micro_batch,
)


def mess3_setup(batch_size: int, micro_batch: int | str = "auto"):
    """The process, model config and TrainConfig of compmech/experiments/mess3.toml at ``batch_size`` on one device."""
    cfg = tomllib.loads((ROOT / "experiments" / "mess3.toml").read_text())
    hmm = get_process("mess3", **cfg["process"]["params"])
    mc = make_config("transformer", hmm.vocab_size, **cfg["model"])
    training = {k: v for k, v in cfg["training"].items() if k not in ("save_at_tokens",)}
    return hmm, mc, TrainConfig(**{**training, "batch_size": batch_size, "devices": 1, "micro_batch": micro_batch})


# ---------------------------------------------------------------------------- the PyTorch model


class TorchBlock(torch.nn.Module):
    """Pre-LayerNorm block: x + W_O attn(ln1 x), then x + down(relu(up(ln2 x)))."""

    def __init__(self, d_model: int, n_heads: int, d_head: int, d_mlp: int, n_layers: int, attention: str):
        super().__init__()
        self.h, self.dh, self.attention = n_heads, d_head, attention
        self.ln1 = torch.nn.LayerNorm(d_model, eps=1e-5)
        self.qkv = torch.nn.Linear(d_model, 3 * n_heads * d_head)
        self.out = torch.nn.Linear(n_heads * d_head, d_model)
        self.ln2 = torch.nn.LayerNorm(d_model, eps=1e-5)
        self.up = torch.nn.Linear(d_model, d_mlp)
        self.down = torch.nn.Linear(d_mlp, d_model)
        for lin, std in (
            (self.qkv, 0.02),
            (self.out, 0.02 / math.sqrt(2 * n_layers)),
            (self.up, 0.02),
            (self.down, 0.02 / math.sqrt(2 * n_layers)),
        ):
            torch.nn.init.normal_(lin.weight, std=std)
            torch.nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:  # x [B, T, d_model]
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.h, self.dh).unbind(2)  # each [B, T, H, Dh]
        if self.attention == "sdpa":
            z = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
            ).transpose(1, 2)
        else:
            scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.dh)
            scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
            z = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v)
        x = x + self.out(z.reshape(B, T, self.h * self.dh))
        return x + self.down(torch.relu(self.up(self.ln2(x))))


class TorchTransformer(torch.nn.Module):
    """compmech's transformer (`predictive_models.transformer`), written plainly in PyTorch."""

    def __init__(self, mc, attention: str):
        super().__init__()
        self.embed = torch.nn.Embedding(mc.vocab_size, mc.d_model)
        self.pos = torch.nn.Parameter(torch.randn(mc.context_length, mc.d_model) * 0.02)
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(
            TorchBlock(mc.d_model, mc.n_heads, mc.d_head, mc.d_mlp, mc.n_layers, attention) for _ in range(mc.n_layers)
        )
        self.ln_final = torch.nn.LayerNorm(mc.d_model, eps=1e-5)
        self.unembed = torch.nn.Linear(mc.d_model, mc.vocab_size)
        torch.nn.init.normal_(self.unembed.weight, std=0.02)
        torch.nn.init.zeros_(self.unembed.bias)
        T = mc.context_length
        self.register_buffer("causal", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] int64 -> logits [B, T, V]
        T = tokens.shape[1]
        x = self.embed(tokens) + self.pos[:T]
        for block in self.blocks:
            x = block(x, self.causal[:T, :T])
        return self.unembed(self.ln_final(x))


class TorchTrainer:
    """The PyTorch side: model, Adam(fused) with clipping and the warm-up + cosine schedule of ``tc``."""

    def __init__(self, mc, tc: TrainConfig, attention: str):
        torch.manual_seed(tc.seed)
        self.model = TorchTransformer(mc, attention)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tc.learning_rate, fused=True)
        schedule = learning_rate_schedule(tc)  # the same optax schedule, as a multiplier of lr
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda step: float(schedule(step)) / tc.learning_rate)
        self.grad_clip = tc.grad_clip

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def train(self, blocks: np.ndarray) -> float:
        """One optimizer step per batch of ``blocks`` [n, B, T+1]; the last step's loss."""
        data = torch.from_numpy(blocks.astype(np.int64))
        for batch in data:
            logits = self.model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.opt.step()
            self.sched.step()
        return float(loss.detach())


class CompmechTrainer:
    """The compmech side: the run's own jitted fused step (`predictive_models.training`) on one device."""

    def __init__(self, mc, tc: TrainConfig):
        self.mesh = training_mesh(1, tc.batch_size, 1)
        tx, self.chunk = _optimizer_and_chunk(mc, _optimizer_settings(tc), self.mesh)
        init_key, _ = _keys(tc)
        params = init_params(mc, init_key)
        self.params = put(jax.tree.map(lambda x: np.asarray(x)[None], params), self.mesh.stacked)
        self.opt_state = put(jax.tree.map(lambda x: np.asarray(x)[None], tx.init(params)), self.mesh.stacked)
        self.k = tc.steps_per_call
        self.micro_batch = resolve_micro_batch(tc.micro_batch, tc.batch_size, self.mesh)  # None: whole batch
        self._n_params = sum(int(np.size(x)) for x in jax.tree.leaves(params))

    def n_params(self) -> int:
        return self._n_params

    def train(self, blocks: np.ndarray) -> float:
        """``blocks`` [n, B, T+1] with n a multiple of steps_per_call: n / steps_per_call fused calls."""
        calls = [put(blocks[i : i + self.k][None], self.mesh.batches) for i in range(0, len(blocks), self.k)]
        for batches in calls:
            self.params, self.opt_state, losses = self.chunk(self.params, self.opt_state, batches)
        return float(np.asarray(losses)[0, -1])


def timed(trainer, blocks: np.ndarray) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, last loss) of ``trainer.train(blocks)``."""
    w, c = time.perf_counter(), time.process_time()
    loss = trainer.train(blocks)
    return time.perf_counter() - w, time.process_time() - c, loss


def compare(batch_size: int, rounds: int, seconds: float, attention: str, micro_batch: int | str = "auto") -> float:
    """Alternated rounds at one batch size; prints the medians and returns compmech/pytorch tokens/s."""
    hmm, mc, tc = mess3_setup(batch_size, micro_batch)
    k, B, T = tc.steps_per_call, batch_size, mc.context_length
    cm, pt = CompmechTrainer(mc, tc), TorchTrainer(mc, tc, attention)
    assert cm.n_params() == pt.n_params(), (cm.n_params(), pt.n_params())
    rng = np.random.default_rng(batch_size)

    def draw(n_steps: int) -> np.ndarray:  # [n_steps, B, T+1] Mess3 tokens
        key = jax.random.key(int(rng.integers(2**31)))
        return np.asarray(
            sample(hmm, key, n_steps * B, T + 1, with_beliefs=False, with_next_token_probs=False).tokens, dtype=np.int32
        ).reshape(n_steps, B, T + 1)

    t = time.perf_counter()
    warm = draw(k)
    cm.train(warm)
    compile_s = time.perf_counter() - t
    pt.train(warm[:5])
    wall, _, _ = timed(cm, draw(k))  # steps per round from compmech's speed
    steps = k * max(1, round(seconds / wall))
    micro = f"micro-batches of {cm.micro_batch}" if cm.micro_batch else "the whole batch at once"
    print(
        f"batch {B}: {pt.n_params():,} parameters each; compmech ({micro}) compiled in {compile_s:.1f} s; "
        f"{rounds} rounds of {steps} steps ({steps * B * T:,} tokens) per side",
        flush=True,
    )
    rates: dict[str, list[float]] = {"compmech": [], "pytorch": []}
    cpu: dict[str, list[float]] = {"compmech": [], "pytorch": []}
    loss: dict[str, float] = {}
    for r in range(rounds):
        blocks = draw(steps)
        order = (("compmech", cm), ("pytorch", pt)) if r % 2 == 0 else (("pytorch", pt), ("compmech", cm))
        for name, trainer in order:
            w, c, loss[name] = timed(trainer, blocks)
            rates[name].append(steps * B * T / w)
            cpu[name].append(c / steps)
    med = {n: statistics.median(v) for n, v in rates.items()}
    for name in ("compmech", "pytorch"):
        spread = f"{min(rates[name]) / 1e3:.1f}-{max(rates[name]) / 1e3:.1f}"
        print(
            f"  {name:9s} {med[name] / 1e3:8.1f} k tokens/s (rounds {spread}), "
            f"{statistics.median(cpu[name]) * 1e3:6.2f} ms CPU per step, last training loss {loss[name]:.4f}",
            flush=True,
        )
    ratio = med["compmech"] / med["pytorch"]
    cpu_ratio = statistics.median(cpu["compmech"]) / statistics.median(cpu["pytorch"])
    print(f"  compmech/pytorch: tokens/s {ratio:.2f}x, CPU per step {cpu_ratio:.2f}x", flush=True)
    return ratio


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    p.add_argument("--rounds", type=int, default=7, help="alternated rounds per batch size (medians over them)")
    p.add_argument("--seconds", type=float, default=3.0, help="about this long per side per round")
    p.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads (torch.set_num_threads)")
    p.add_argument(
        "--torch-attention",
        choices=("einsum", "sdpa"),
        default="einsum",
        help="PyTorch attention: einsums like compmech's, or F.scaled_dot_product_attention",
    )
    p.add_argument(
        "--micro-batch",
        default="auto",
        help='compmech\'s [training] micro_batch: "auto" (its default) or a divisor of each batch size '
        "(the batch size itself: the whole batch in one pass)",
    )
    args = p.parse_args(argv)
    micro = args.micro_batch if args.micro_batch == "auto" else int(args.micro_batch)
    torch.set_num_threads(args.threads)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; jax {jax.__version__} on "
        f"{jax.devices()[0].device_kind} ({jax.devices()[0].platform}); torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, attention {args.torch_attention}; Python {sys.version.split()[0]}",
        flush=True,
    )
    ratios = {B: compare(B, args.rounds, args.seconds, args.torch_attention, micro) for B in args.batch_sizes}
    print("compmech/pytorch tokens/s: " + ", ".join(f"batch {B} {r:.2f}x" for B, r in ratios.items()))


if __name__ == "__main__":
    main()
