"""TransformerLens both ways (the [interop] extra): compmech's transformer exported as a HookedTransformer gives
its logits and every hook within a float32 bound; the HookedTransformer analysed through analyze_model gives the
run's probe numbers within the bound those activation differences allow."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformer_lens = pytest.importorskip("transformer_lens")
if not hasattr(transformer_lens, "HookedTransformer"):  # TransformerLens 4 removed it
    pytest.skip("transformer-lens>=2,<4 is needed (HookedTransformer)", allow_module_level=True)

import predictive_models  # noqa: E402
from compmech.interop.models import analyze_model  # noqa: E402
from compmech.interop.transformer_lens import (  # noqa: E402
    ExportError,
    export_files,
    float32_bound,
    load_hooked_transformer,
    to_hooked_transformer,
)
from compmech.runs.cli import main  # noqa: E402
from compmech.runs.config import load_config  # noqa: E402
from compmech.runs.probing import probe_model  # noqa: E402
from compmech.runs.processes import build_process  # noqa: E402
from compmech.runs.sources import context_set  # noqa: E402
from probes import LinearProbe, probe_rows  # noqa: E402

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny_mess3.toml"
VARIANTS = [
    {},
    {"attn_only": True},
    {"layer_norm": False},
    {"positional": "none"},
    {"attn_only": True, "layer_norm": False, "positional": "none"},
]


def random_params(mc, seed):
    import jax

    from predictive_models.models import abstract_params

    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: (rng.standard_normal(s.shape) / np.sqrt(s.shape[0])).astype(np.float32), abstract_params(mc)
    )


def compmech_equivalent(cache, name, hooked):
    """TransformerLens's array for compmech's activation ``name``. One differs in meaning: compmech's
    ``ln_final.hook_normalized`` is the final LayerNorm's output (after its scale and bias), TransformerLens's is
    before them; so compmech's = TransformerLens's * ln_final.w + ln_final.b."""
    a = cache[name]
    if name == "ln_final.hook_normalized":
        a = a * hooked.ln_final.w + hooked.ln_final.b
    return a.detach().numpy()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "paper")
def test_export_reproduces_logits_and_every_hook(variant):
    mc = predictive_models.make_config(
        "transformer", 3, context_length=6, n_layers=2, d_model=16, n_heads=2, d_head=4, d_mlp=32, **variant
    )
    params = random_params(mc, 7)
    hooked = to_hooked_transformer(mc, params)
    tokens = np.random.default_rng(0).integers(0, 3, size=(64, 6))
    names = predictive_models.activation_names(mc)
    ours = predictive_models.compute_activations(mc, params, tokens, names=names, method="full")
    logits = predictive_models.compute_logits(mc, params, tokens, method="full")
    with torch.no_grad():
        tl_logits, cache = hooked.run_with_cache(torch.as_tensor(tokens))
    assert np.abs(tl_logits.numpy() - logits).max() <= float32_bound(mc, np.abs(logits).max())
    for name in names:
        theirs = compmech_equivalent(cache, name, hooked)
        assert theirs.shape == ours[name].shape, name
        assert np.abs(theirs - ours[name]).max() <= float32_bound(mc, np.abs(ours[name]).max()), name


def test_export_files_round_trip_and_refusals(tmp_path):
    mc = predictive_models.make_config(
        "transformer", 3, context_length=4, n_layers=1, d_model=8, n_heads=1, d_head=4, d_mlp=16
    )
    params = random_params(mc, 3)
    export_files(mc, params, tmp_path / "tl")
    loaded, direct = load_hooked_transformer(tmp_path / "tl"), to_hooked_transformer(mc, params)
    tokens = torch.as_tensor(np.random.default_rng(1).integers(0, 3, size=(8, 4)))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), direct(tokens))
    rnn = predictive_models.make_config("gru", 3, context_length=4)
    with pytest.raises(ExportError, match="a gru model has no TransformerLens form"):
        to_hooked_transformer(rnn, None)


def probe_number_bound(X, X_other, ctx, layer_result):
    """How far a probe number may move when the activations move from X to X_other ([N, T, d], max entry change
    eps), to first order, from bounds rather than from a run:

    - in-sample MSE (and R² = 1 - MSE / Var Y): the fit is optimal, so its change is the explicit one only
      (envelope theorem): |dMSE| <= 2 eps mean_rows(sum_c |r_c| ||beta_c||_1) / k + (eps max_c ||beta_c||_1)^2;
    - a refitted split (held out, shuffled): the least-squares perturbation bound (Golub & Van Loan, Thm 5.3.1)
      on the coefficients, ||dbeta|| / ||beta|| <= (eps ||1||/||X||) (2 kappa + kappa^2 tan theta), with kappa the
      condition number of the full centred design (a split's fewer rows can raise it: there a first-order
      estimate), then |dMSE| <= 2 sqrt(MSE) delta + delta^2 with delta the predictions' change."""
    eps = float(np.abs(X_other - X).max())
    data = probe_rows(X, ctx.beliefs, ctx.tokens)
    fit = LinearProbe().fit(data.X, data.Y)
    beta = np.abs(fit.coef_).sum(axis=0)  # [k] ||beta_c||_1
    r = data.Y - fit.predict(data.X)
    k = data.Y.shape[1]
    in_sample = 2 * eps * float((np.abs(r) @ beta).mean()) / k + (eps * beta.max()) ** 2
    Xc = data.X.astype(np.float64) - data.X.mean(axis=0)
    s = np.linalg.svd(Xc, compute_uv=False)
    kappa = s[0] / s[-1]
    delta = eps * beta.max() * (1 + 2 * kappa + kappa**2)  # the predictions' change: dX beta, then X dbeta
    mse = max(layer_result["mse_shuffled"], layer_result["mse"])
    refit = 2 * np.sqrt(mse) * delta + delta**2
    return in_sample, refit, in_sample / float(data.Y.var(axis=0).sum() / k)


def test_a_hooked_transformer_analysed_gives_the_native_probe_numbers(tmp_path):
    """The same weights probed natively (probe_model: compmech's forward) and through TransformerLens
    (analyze_model: run_with_cache on the evaluation set): every probe.json number within its bound."""
    cfg = load_config(TINY)
    hmm = build_process(cfg.process)
    mc = cfg.model_config(hmm.vocab_size)
    params = random_params(mc, 11)
    ctx = context_set(hmm, mc.context_length)
    native = probe_model(cfg, mc, params, ctx, "block_2").to_json()
    hooked = to_hooked_transformer(mc, params)
    labels = {
        "embedding": "blocks.0.hook_resid_pre",
        "block_1": "blocks.0.hook_resid_post",
        "block_2": "blocks.1.hook_resid_post",
    }
    result = analyze_model(
        hooked,
        "mess3",
        names=labels,
        out=tmp_path / "tl",
        probe_layer="block_2",
        probe={"n_repeats": cfg.probe.n_repeats},
        seed=cfg.seed,
    )
    ours = result.probe_json
    assert ours["regime"] == "exact" and ours["n_rows"] == native["n_rows"]
    acts = predictive_models.compute_activations(mc, params, ctx.tokens, names=list(labels), method="full")
    with torch.no_grad():
        _, cache = hooked.run_with_cache(torch.as_tensor(ctx.tokens))
    for label, hook in labels.items():
        X, X_tl = acts[label], cache[hook].numpy()
        assert np.abs(X_tl - X).max() <= float32_bound(mc, np.abs(X).max())
        in_sample, refit, r2 = probe_number_bound(X, X_tl, ctx, native["layers"][label])
        a, b = ours["layers"][label], native["layers"][label]
        assert abs(a["mse"] - b["mse"]) <= in_sample and abs(a["r2"] - b["r2"]) <= r2, label
        for key in ("mse_heldout_contexts", "mse_heldout", "mse_shuffled"):
            assert abs(a[key] - b[key]) <= refit, (label, key)
    assert (result.path / "report.html").is_file() and result.summary.relative_loss is not None


def test_export_tl_command(tmp_path, capsys):
    """compmech export-tl on a run directory's final checkpoint writes the config and the state dict; a folder
    without one is refused in one line (exit 2)."""
    run = tmp_path / "run"
    mc = predictive_models.make_config(
        "transformer", 3, context_length=6, n_layers=2, d_model=16, n_heads=2, d_head=4, d_mlp=32
    )
    params = random_params(mc, 5)
    predictive_models.save_checkpoint(
        run / "checkpoints" / "final.msgpack", params=params, opt_state=None, step=0, model_config=mc, train_config={}
    )
    assert main(["export-tl", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["config.json", "model.safetensors"]
    config = json.loads((run / "transformer_lens" / "config.json").read_text())
    assert config["n_layers"] == 2 and config["normalization_type"] == "LN" and config["act_fn"] == "relu"
    hooked = load_hooked_transformer(run / "transformer_lens")
    tokens = np.random.default_rng(2).integers(0, 3, size=(16, 6))
    with torch.no_grad():
        theirs = hooked(torch.as_tensor(tokens)).numpy()
    ours = predictive_models.compute_logits(mc, params, tokens, method="full")
    assert np.abs(theirs - ours).max() <= float32_bound(mc, np.abs(ours).max())
    assert main(["export-tl", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
