"""The sweep report: JSON, Markdown or HTML (a jinja2 template), with plots."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import jinja2
import numpy as np
import torch

from actverify.dtypes import FloatFormat, float_format
from actverify.spec import get_spec
from actverify.sweep.histogram import N_BINS, HIST_LABELS
from actverify.sweep.plan import FAST_CHUNK, order_key, _float_to_key
from actverify.sweep.results import CheckStats, SweepResult, _bound_of, _own_of, _num, _clean


def _key_ticks(fmt: FloatFormat) -> tuple[list[int], list[str]]:
    """Ticks for an axis with one step per representable value: 0, +-inf and powers of ten,
    thinned so that labels do not collide."""
    space = 1 << fmt.bits
    cands = [(0.0, "0"), (math.inf, "inf"), (-math.inf, "-inf")]
    lo = math.floor(math.log10(fmt.smallest_subnormal))
    hi = math.floor(math.log10(fmt.max))
    for k in range(lo + 1, hi + 1):
        cands += [(10.0**k, f"1e{k}" if k else "1"), (-(10.0**k), f"-1e{k}" if k else "-1")]
    chosen: list[tuple[int, str]] = []
    for v, label in sorted(cands, key=lambda c: (abs(c[0]) != 1, c[0] != 0, not math.isinf(c[0]),
                                                  abs(math.log10(abs(c[0])) % 5)
                                                  if c[0] and not math.isinf(c[0]) else 0)):
        key = _float_to_key(v, fmt)
        if all(abs(key - k) > space / 16 for k, _ in chosen):
            chosen.append((key, label))
    chosen.sort()
    return [k for k, _ in chosen], [label for _, label in chosen]


def _on_plot(value: float, err: np.ndarray) -> float:
    """The height a figure is drawn at: an infinite error (a NaN or an infinity for a number)
    where the plot draws its infinite markers, above every finite error."""
    if math.isfinite(value):
        return value
    finite = err[np.isfinite(err)]
    return max(1.0, float(finite.max()) * 2 if finite.size else 1.0)


def _yscale(ax, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    if np.isinf(values).any():  # keep the infinite markers in view
        top = max(top, _on_plot(math.inf, values))
    if top <= 2:
        ax.set_ylim(-0.02, max(top * 1.15, 0.6))
    else:
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(-0.1, top * 3)


def _plot_elementwise(r: SweepResult, plt) -> list[tuple[str, bytes]]:
    fmt = float_format(r.dtype)
    figs = []
    a = r.arrays
    passes = [p for p in r.passes.values()]
    if "key" in a:
        fig, axes = plt.subplots(len(passes), 1, figsize=(10, 2.6 * len(passes)), squeeze=False)
        for ax, p in zip(axes[:, 0], passes):
            err = a.get(p.name)
            if err is None:
                continue
            key = a["key"]
            finite = np.isfinite(err)
            ax.scatter(key[finite], err[finite], s=1, c="tab:blue", rasterized=True,
                       label="ulp error")
            nonfin = np.isinf(err)
            if nonfin.any():
                top = max(1.0, float(np.nanmax(np.where(finite, err, 0))) * 2)
                ax.scatter(key[nonfin], np.full(nonfin.sum(), top), s=4, c="tab:orange",
                           marker="^", label="infinite (NaN/inf mismatch)")
            for w in p.worst[:5]:
                k = _float_to_key(w["x"], fmt)
                ax.scatter([k], [_on_plot(w["ulp_error"], err)], s=40, facecolors="none",
                           edgecolors="red")
            if p.max_at:
                k = _float_to_key(p.max_at["x"], fmt)
                ax.annotate(f"max {p.max_ulp:.3g} ulp at x={p.max_at['x']:.6g} "
                            f"({p.max_at['bits']})", (k, _on_plot(p.max_ulp, err)),
                            color="red", fontsize=8, xytext=(5, -12),
                            textcoords="offset points")
            for e in p.examples[:10]:
                k = _float_to_key(e["x"], fmt)
                ax.scatter([k], [min(e["ulp_error"], 1e30)], s=60, marker="x", c="red")
            _yscale(ax, np.concatenate([err, [p.max_ulp or 0.0]]))
            ticks, labels = _key_ticks(fmt)
            ax.set_xticks(ticks, labels, fontsize=7)
            ax.set_xlim(0, 1 << fmt.bits)
            ax.set_ylabel("ulp")
            ax.set_title(f"{r.target} {r.dtype}: {p.name} (one step per representable x)",
                         fontsize=9)
        fig.tight_layout()
        figs.append(("ulp error against x", _png(fig, plt)))
    elif "chunk_key" in a:
        fig, ax = plt.subplots(figsize=(10, 2.8))
        ax.scatter(a["chunk_key"], a["chunk_max"], s=3)
        ticks, labels = _key_ticks(fmt)
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        _yscale(ax, a["chunk_max"])
        ax.set_ylabel("max ulp per chunk")
        ax.set_title(f"{r.target} {r.dtype}: forward, largest counted error per chunk of "
                     f"{FAST_CHUNK:,} inputs", fontsize=9)
        fig.tight_layout()
        figs.append(("ulp error against x (chunk maxima)", _png(fig, plt)))
    figs.append(("histogram", _plot_histogram(r, plt)))
    if "canonical_gap" in a and "key" in a:
        gap = a["canonical_gap"]
        diff = gap != 0
        fig, ax = plt.subplots(figsize=(10, 2.2))
        if diff.any():
            shown = np.where(np.isfinite(gap[diff]), gap[diff], 0)
            ax.scatter(a["key"][diff], shown, s=6, c="purple")
            _yscale(ax, shown)
        else:
            ax.text(0.5, 0.5, "bitwise identical to PyTorch's canonical kernel at every input"
                    if r.checks.get("differs_from_canonical", CheckStats("")).checked else
                    "the target is PyTorch's canonical kernel", ha="center", va="center",
                    transform=ax.transAxes)
        ticks, labels = _key_ticks(fmt)
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        ax.set_ylabel("|kernel - canonical| (ulp)")
        ax.set_title(f"{r.target} {r.dtype}: inputs where the kernel differs from PyTorch's "
                     "canonical kernel", fontsize=9)
        fig.tight_layout()
        figs.append(("kernel vs PyTorch", _png(fig, plt)))
    return figs


def _plot_histogram(r: SweepResult, plt) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 2.8))
    used = [i for i in range(N_BINS) if any(p.histogram[i] for p in r.passes.values())]
    last = max(used) + 1 if used else 4
    idx = np.arange(last)
    width = 0.8 / max(1, len(r.passes))
    for j, p in enumerate(r.passes.values()):
        ax.bar(idx + j * width, [p.histogram[i] for i in range(last)], width=width,
               label=p.name)
    ax.set_xticks(idx + 0.4 - width / 2, HIST_LABELS[:last], rotation=45, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("inputs")
    ax.set_title(f"{r.target} {r.dtype}: ULP error histogram", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig, plt)


def _plot_softmax(r: SweepResult, plt) -> list[tuple[str, bytes]]:
    fmt = float_format(r.dtype)
    labels = sorted({k.split("/")[0] for k in r.arrays if k.endswith("/err")})
    if not labels:
        return []
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 2.3 * len(labels)), squeeze=False)
    ticks, tl = _key_ticks(fmt)
    for ax, label in zip(axes[:, 0], labels):
        v = r.arrays[f"{label}/x"]
        err = r.arrays[f"{label}/err"]
        key = order_key(fmt.bits_of(torch.from_numpy(v).to(fmt.dtype)).numpy(), fmt)
        fin = np.isfinite(err)
        ax.scatter(key[fin], err[fin], s=1, rasterized=True)
        inf = np.isinf(err)
        if inf.any():  # NaN where a number is due: an infinite error, drawn above the rest
            ax.scatter(key[inf], np.full(int(inf.sum()), _on_plot(math.inf, err)), s=4,
                       c="tab:orange", marker="^", label="infinite (NaN/inf mismatch)")
        p = r.passes.get(f"forward {label}")
        if p and p.max_at:
            k = _float_to_key(p.max_at["x"], fmt)
            ax.scatter([k], [_on_plot(p.max_ulp, err)], s=40, facecolors="none",
                       edgecolors="red")
            ax.annotate(f"max {p.max_ulp:.3g} ulp at x={p.max_at['x']:.6g}",
                        (k, _on_plot(p.max_ulp, err)), color="red", fontsize=8,
                        xytext=(5, -12), textcoords="offset points")
        _yscale(ax, np.concatenate([err, [p.max_ulp if p and p.max_ulp else 0.0]]))
        ax.set_xticks(ticks, tl, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        ax.set_title(f"{r.target} {r.dtype}: softmax {label}, error at the swept value",
                     fontsize=9)
    fig.tight_layout()
    return [("ulp error against the swept value", _png(fig, plt)),
            ("histogram", _plot_histogram(r, plt))]


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _summary_rows(results: Sequence[SweepResult]) -> list[list[str]]:
    rows = []
    for r in results:
        fwd = r.passes.get("forward") or next(
            (p for k, p in r.passes.items() if k.startswith("forward")), None)
        bwd = [p for k, p in r.passes.items() if k.startswith("backward")]
        bmax = max((p for p in bwd if p.max_ulp is not None), key=lambda p: p.max_ulp,
                   default=None)
        checks = ", ".join(f"{c.name}: {c.violations}" for c in r.checks.values()
                           if c.checked and c.counts_for_ok)
        diffs = sum(c.violations for c in r.checks.values() if not c.counts_for_ok and c.checked)
        rows.append([
            r.target, r.label, r.dtype, f"{r.n_inputs:,}",
            _num(fwd.max_ulp) + _bound_of(fwd) if fwd else "-",
            _num(fwd.max_at["x"]) if fwd and fwd.max_at else "-",
            str(sum(p.not_correctly_rounded for k, p in r.passes.items()
                    if k.startswith("forward"))),
            str(sum(p.policy_violations for p in r.passes.values())),
            _num(bmax.max_ulp) + _bound_of(bmax) + _own_of(bmax) if bmax else "-",
            _num(bmax.max_at["x"]) if bmax and bmax.max_at else "-",
            checks or "-", str(diffs), r.verdict + (f" ({r.skipped or r.error})"
                                                    if r.skipped or r.error else "")])
    return rows


_HEADERS = ["target", "activation", "dtype", "inputs", "fwd max ulp", "at x",
            "fwd not correctly rounded", "policy violations", "bwd max ulp", "at x",
            "whole-space checks (violations)", "inputs differing from canonical", "verdict"]


def write_report(results: Sequence[SweepResult], out_dir: str | Path, *,
                 fmt: Literal["html", "md"] = "html") -> Path:
    """Write `sweep.json` and `sweep.html` (self-contained, PNGs embedded) or `sweep.md`
    (PNGs beside it) into out_dir; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "numpy": np.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} cpus", "python":
                platform.python_version()}
    data = {"schema": "actverify-sweep/1", "meta": meta, "ok": all(r.ok for r in results),
            "results": [r.to_dict() for r in results]}
    (out / "sweep.json").write_text(json.dumps(_clean(data), indent=1, allow_nan=False))
    sections = []
    for i, r in enumerate(results):
        figs = []
        if not r.skipped and not r.error:
            figs = (_plot_elementwise(r, plt) if get_spec(r.activation).elementwise
                    else _plot_softmax(r, plt))
        sections.append((r, figs, i))
    if fmt == "md":
        path = out / "sweep.md"
        plots = out / "plots"
        plots.mkdir(exist_ok=True)
        lines = ["# actverify sweep", "", f"torch {meta['torch']}, {meta['machine']}. "
                 f"Data: [sweep.json](sweep.json).", "",
                 "| " + " | ".join(_HEADERS) + " |", "|" + " --- |" * len(_HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in _summary_rows(results)]
        for r, figs, i in sections:
            lines += ["", f"## {r.target} ({r.label}), {r.dtype}", "",
                      f"Coverage: {r.coverage}. Verdict: **{r.verdict}**.", ""]
            lines += _detail_md(r)
            for j, (title, png) in enumerate(figs):
                name = f"{i:02d}_{r.activation}_{r.dtype}_{j}.png"
                (plots / name).write_bytes(png)
                lines += ["", f"![{title}](plots/{name})"]
        path.write_text("\n".join(lines) + "\n")
        return path
    path = out / "sweep.html"
    page = _template("report.html.j2").render(
        meta=meta, ok=data["ok"], headers=_HEADERS, rows=_summary_rows(results),
        sections=[{"target": r.target, "activation": r.label, "dtype": r.dtype,
                   "coverage": r.coverage, "verdict": r.verdict, "engine": r.engine,
                   "elapsed_s": r.elapsed_s, "detail": "\n".join(_detail_md(r)),
                   "figures": [{"title": title, "png_base64": base64.b64encode(png).decode()}
                               for title, png in figs]}
                  for r, figs, _ in sections],
        json=json.dumps(_clean(data), indent=1, allow_nan=False))
    path.write_text(page)
    return path


def _template(name: str) -> jinja2.Template:
    """A template shipped beside this module (package data), HTML-escaped throughout."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("actverify.sweep", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template(name)


def _detail_md(r: SweepResult) -> list[str]:
    lines = []
    for note in r.notes:
        lines.append(f"- note: {note}")
    for p in r.passes.values():
        where = (f" at x = {p.max_at['x']!r} ({p.max_at['bits']})" if p.max_at else "")
        where += _bound_of(p) + _own_of(p)
        lines.append(f"- {p.name}: max {_num(p.max_ulp)} ulp{where}; "
                     f"{p.not_correctly_rounded:,} of {p.n:,} not correctly rounded; "
                     f"{p.policy_violations:,} policy violations; {p.excused:,} flushed "
                     f"(accepted); {p.accepted:,} by convention")
        for e in p.examples[:5]:
            lines.append(f"  - violation: x = {e['x']!r} ({e['bits']}): got {e['y']!r}, "
                         f"true {e['expected']!r}, {e['ulp_error']:.4g} ulp ({e['reason']})")
    for c in r.checks.values():
        if not c.checked:
            lines.append(f"- {c.name}: not checked ({c.why_not})")
            continue
        lines.append(f"- {c.name}: {c.violations:,} of {c.n:,}"
                     + ("" if c.counts_for_ok else " (information)"))
        for e in c.examples[:3]:
            lines.append(f"  - {json.dumps(_clean(e))}")
    for sp in r.specials:
        lines.append(f"- special {sp['name']}: y = {sp.get('y')!r}, expected "
                     f"{sp.get('expected')!r}: {'ok' if sp.get('ok') else 'WRONG'}"
                     + (f" ({sp['note']})" if sp.get("note") else ""))
    return lines

