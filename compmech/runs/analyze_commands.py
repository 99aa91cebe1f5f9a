"""`compmech probe` (analyse the activations of a model trained elsewhere) and `compmech contexts` (write the exact
evaluation set for a model to be run on), over `compmech.runs.analyze`."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.analyze import READS, AnalysisInputError, analyze, resolve_process
from compmech.runs.array_files import read_arrays
from compmech.runs.files import write_bytes_atomic
from compmech.runs.settings import FigureSettings


def _value(text: str) -> Any:
    """A --param value: JSON (numbers, true/false, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _params(pairs: list[str] | None) -> dict[str, Any]:
    out = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise AnalysisInputError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param x=0.05")
        out[key] = _value(value)
    return out


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise AnalysisInputError(
            f"--vocab-map {text!r}: expected comma-separated model token ids, one per process "
            "token in order, e.g. --vocab-map 10,11,12"
        ) from None


def _add_process_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--process",
        required=True,
        metavar="PROCESS",
        help="a registered process name (compmech processes lists them), a spec file (.toml), or a TOML "
        "file with a [process] table (mixtures, products, modules: as in a config)",
    )
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter of a named process (repeat)")
    p.add_argument("--module", default=None, help="a Python module that registers the named process")


def add_probe_command(subparsers: Any) -> None:
    """``probe ACTIVATIONS --process P [...]``: analyse activations; ``func`` = `cmd_probe`."""
    p = subparsers.add_parser(
        "probe",
        help="analyse the activations of a model trained elsewhere (tokens + activations, .npz or "
        ".safetensors) for a process's beliefs: probes, geometry, figures, report",
        description="Analyse a model trained elsewhere: its token sequences [N, T] and activations {name: [N, T, d]} "
        "in one .npz or .safetensors file (an array 'tokens', optionally 'logits' [N, T, V], every "
        "other array an activation), with the process that generated the tokens. Writes an analysis "
        "directory like a run directory: probe.json (every layer, held out on unseen contexts, the "
        "shuffled control), analysis.json, figures/, summary.json, report.html.",
    )
    p.add_argument("activations", type=Path, metavar="ACTIVATIONS", help="an .npz or .safetensors file")
    _add_process_options(p)
    p.add_argument(
        "--tokens",
        type=Path,
        default=None,
        metavar="FILE",
        help="the tokens' file, when they are not in ACTIVATIONS (its array 'tokens')",
    )
    p.add_argument("--names", default=None, metavar="A,B,...", help="the activations to probe (default: all)")
    p.add_argument("--probe-layer", default=None, help="the headline layer (default: the last one)")
    p.add_argument(
        "--start-token",
        type=int,
        default=None,
        metavar="ID",
        help="every sequence begins with this start token (position 0's belief is the prior)",
    )
    p.add_argument(
        "--reads",
        choices=READS,
        default="after",
        help="after (default): activations[:, t] have read tokens[:, :t+1]; before: they have read "
        "tokens[:, :t] (the model predicts token t at position t)",
    )
    p.add_argument(
        "--vocab-map",
        default=None,
        metavar="ID,ID,...",
        help="the model's token id of each process token, in order (default: the same ids)",
    )
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="the analysis directory (default: analyses/<file stem>)"
    )
    p.add_argument("--name", default=None, help="the analysis's name (default: the file's stem)")
    p.add_argument("--model", default="", help="a few words on the model, for the report")
    p.add_argument("--seed", type=int, default=0, help="the probe's splits and shuffle (default 0)")
    p.add_argument("--n-repeats", type=int, default=5, help="held-out splits averaged (default 5)")
    p.add_argument("--rows", choices=("all_strings", "distinct_contexts"), default="all_strings")
    p.add_argument("--weighting", choices=("uniform", "probability"), default="uniform")
    p.add_argument("--formats", default="png", metavar="png,svg,pdf", help="figure formats (default png)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    arrays = read_arrays(args.activations)
    tokens = arrays.pop("tokens", None)
    if args.tokens is not None:
        tokens = read_arrays(args.tokens).get("tokens")
    if tokens is None:
        raise AnalysisInputError(
            f"{args.activations} holds no array 'tokens' (and no --tokens FILE was given); "
            "save the token ids [N, T] as 'tokens'"
        )
    logits = arrays.pop("logits", None)
    if args.names:
        wanted = args.names.split(",")
        missing = [n for n in wanted if n not in arrays]
        if missing:
            raise AnalysisInputError(
                f"--names: {missing[0]!r} is not an array of {args.activations} ({', '.join(arrays)})"
            )
        arrays = {n: arrays[n] for n in wanted}
    result = analyze(
        tokens,
        arrays,
        args.process,
        params=_params(args.param),
        module=args.module,
        out=args.out or Path("analyses") / (args.name or args.activations.stem),
        name=args.name or args.activations.stem,
        start_token=args.start_token,
        reads=args.reads,
        vocab_map=_ids(args.vocab_map),
        probe_layer=args.probe_layer,
        logits=logits,
        probe={"n_repeats": args.n_repeats, "rows": args.rows, "weighting": args.weighting},
        figures=FigureSettings(formats=tuple(args.formats.split(","))),
        seed=args.seed,
        model=args.model,
        progress=not args.no_progress,
        command="compmech " + " ".join(getattr(args, "argv", [])),
    )
    res = result.probe.final
    held = res.get("mse_heldout_contexts")
    print(
        f"probe of {result.probe.probe_layer}: held-out MSE on unseen contexts "
        f"{'withheld' if held is None else f'{held:.4g}'}, in-sample {res['mse']:.4g}, shuffled control "
        f"{res['mse_shuffled']:.4g}",
        file=sys.stderr,
    )
    print(result.path / "report.html")
    return 0


def add_contexts_command(subparsers: Any) -> None:
    """``contexts --process P --context-length L --out FILE``: the exact evaluation set; ``func`` = `cmd_contexts`."""
    p = subparsers.add_parser(
        "contexts",
        help="write a process's exact evaluation set (every allowed string with probabilities, beliefs, "
        "next-token laws) as .npz, to run your own model on",
        description="Write every allowed string of the context length with its exact theory as one .npz: tokens "
        "[N, T] int32, probs [N], beliefs [N, T, S] (beliefs[:, t] after tokens[:, :t+1]), "
        "next_token_probs [N, T, V], optimal_loss [T] (nats), and info (JSON text). Run your model on "
        "'tokens', save its activations beside them, and analyse them with compmech probe.",
    )
    _add_process_options(p)
    p.add_argument(
        "--context-length",
        type=int,
        required=True,
        metavar="L",
        help="positions per string (with --bos the start token is one of them)",
    )
    p.add_argument(
        "--bos",
        action="store_true",
        help="begin every string with the start token (id V, the number "
        "of the process's tokens): position 0's belief is the prior",
    )
    p.add_argument("--max-strings", type=int, default=200_000, help="refuse sets larger than this (default 200000)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the .npz file to write")
    p.set_defaults(func=cmd_contexts)


def cmd_contexts(args: argparse.Namespace) -> int:
    source, _, _ = resolve_process(args.process, params=_params(args.param), module=args.module)
    L = args.context_length
    if L < 1 or (args.bos and L < 2):
        raise AnalysisInputError(f"--context-length must be >= {2 if args.bos else 1}; got {L}")
    if not source.traits.exact_regime:
        raise AnalysisInputError(
            f"{source.name} has no exact theory of every context (it runs sampled); sample "
            "sequences instead and analyse them with compmech probe"
        )
    bound = source.strings_bound(L - 1 if args.bos else L)
    if bound > args.max_strings:
        raise AnalysisInputError(
            f"{source.name} has {bound:.3g} allowed strings of this length, above "
            f"--max-strings {args.max_strings}; shorten --context-length or raise the cap"
        )
    ctx = source.context_set(L, args.bos)
    info = {
        "process": source.name,
        "params": source.params,
        "context_length": L,
        "bos": bool(args.bos),
        "n_strings": int(len(ctx.tokens)),
        "vocab_size": source.vocab_size,
        "alignment": "beliefs[:, t] is the belief after tokens[:, :t+1]; next_token_probs[:, t] the law of the "
        "token after them" + ("; tokens[:, 0] is the start token (id vocab_size)" if args.bos else ""),
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        tokens=ctx.tokens.astype(np.int32),
        probs=ctx.probs,
        beliefs=ctx.beliefs,
        next_token_probs=ctx.next_token_probs,
        optimal_loss=ctx.optimal_loss,
        info=np.array(json.dumps(info, default=str)),
    )
    out = args.out if args.out.suffix == ".npz" else args.out.with_suffix(".npz")
    write_bytes_atomic(out, buffer.getvalue())
    print(f"{len(ctx.tokens):,} strings of {L} positions ({source.name}) -> {out}", file=sys.stderr)
    print(out)
    return 0
