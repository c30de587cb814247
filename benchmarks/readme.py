"""benchmarks/README.md, generated: the current figures read from the committed raw reports that
``current.toml`` names, the scripts by topic, and the index of the lab notes in ``notes/``.

    python benchmarks/readme.py            # rewrite benchmarks/README.md
    python benchmarks/readme.py --check    # exit 1 if it is not what the reports say

Every figure on the page is read from its report here, with the commit, command, date and load
average the report records (its ``provenance`` block, or older fields); for reports older than
that record, the commit its lab note gives (in ``current.toml``) or else the commit that
committed the report and the command that made it (``results/MANIFEST.toml``), labelled
"committed in"; and links to it.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

TOPICS: dict[str, list[str]] = {
    "Quality (coldbrew bench and what reads its reports)": [
        "aim_table.py", "blend_bound.py", "shape_bound.py", "blend_parts.py", "field_ablation.py",
        "fusion_validation.py", "part_validation.py", "summarize.py", "transfer.py",
        "whitened_cf_map.py", "diversity.py", "context.py", "new_user_answers.py",
        "next_item_validation.py", "next_steps_validation.py", "new_user_validation.py",
        "sasrec_validation.py", "lodo_defaults.py", "linear_transitions.py",
    ],
    "Replay (a time-ordered stream through a live service)": [
        "replay.py", "replay_report.py", "replay_service.py", "replay_stream.py",
    ],
    "Service load, abuse and replicas": [
        "load.py", "load_hybrid.py", "liveserver.py", "abuse.py", "abuse_writes.py",
        "replicas.py", "pgvector_probe.py",
    ],
    "Scale (candidates, a million items)": [
        "candidates.py", "candidates_ab.py", "candidates_profile.py", "million.py",
        "million_memory.py", "million_start.py", "pg_restart.py", "ivfpq_real.py",
        "attribute_latency.py",
    ],
    "Training, encoding and refits": [
        "train_speed.py", "train_first_line.py", "finetune_options.py", "distill.py",
        "encode_throughput.py", "encode_ab.py", "int8_agreement.py", "ray_encode.py",
        "refit_cost.py", "bench_runtimes.py", "ci_time.py",
    ],
    "Languages": ["zh_wishes.py", "mixed_language.py"],
    "This page": ["readme.py"],
}  # fmt: skip

INTRO = """\
# Benchmarks

What coldbrew measures, on real data and live services, with the command, commit, machine and
date of every figure. **This page is generated** by `python benchmarks/readme.py` from
[`current.toml`](current.toml) (which figures are current, and where each comes from), the
committed raw reports in [`results/`](results/) and the lab notes in [`notes/`](notes/); edit
those, not this page. The lab notes hold how each figure was reached, what was tried and what
did not work, dated; the protocols, metrics and baselines are described in
[the first of them](notes/2026-11-23-every-model-every-protocol.md#what-is-measured).

Every report a script writes now carries a `provenance` block (commit, whether the tree was
dirty, the exact command, machine, load average at start and end, dates:
`coldbrew.bench.provenance`). For the older reports that lack it,
[`results/MANIFEST.toml`](results/MANIFEST.toml) gives the commit that *committed* each one
(shown below as "committed in", not the commit it ran at) and the command that made it, with
the kind of evidence it rests on: quoted from the report or a lab note, inferred from the
report's recorded arguments and the script at that commit. Three reports made by code never
committed were retired from `results/` (the manifest's header names them; git keeps them).

Machine: the project's shared 2-core, 24 GiB x86_64 box, no GPU; other jobs often ran beside,
so each report records its load average. Quality figures come from `coldbrew bench` on saved
seed-42 splits (`coldbrew bench --dataset NAME --protocol all --models all --out DIR` runs
every model on every protocol); the models and settings are those `coldbrew serve` and
`coldbrew recommend` use by default.
"""


@dataclass
class Source:
    """Where a figure comes from: its report and what the report records of its making."""

    report: str
    commit: str
    command: str
    date: str
    load: str


@functools.cache
def read(path: str) -> Any:
    """A committed report, parsed once however many figures come from it."""
    return json.loads((HERE / path).read_text())


@functools.cache
def manifest() -> dict[str, dict[str, Any]]:
    """``results/MANIFEST.toml`` by path: the commit that committed each older report and the
    command that made it."""
    entries = tomllib.loads((HERE / "results" / "MANIFEST.toml").read_text())["report"]
    return {path: entry for entry in entries for path in entry["paths"]}


def committed(path: str) -> dict[str, Any]:
    """The manifest's entry for the report at ``path`` (its own, or its bench folder's)."""
    inside = path.removeprefix("results/")
    entries = manifest()
    if inside in entries:
        return entries[inside]
    folders = [p for p in entries if p.endswith("/") and inside.startswith(p)]
    if not folders:
        raise ValueError(f"{path}: no provenance in the report and no line in MANIFEST.toml")
    return entries[max(folders, key=len)]


def source(path: str, report: Any, entry: dict[str, Any]) -> Source:
    """The commit, command, date and load average ``report`` records (``entry`` fills gaps,
    then the manifest: the commit that committed the report, labelled so)."""
    meta = report.get("meta", report)
    block = meta.get("provenance") or report.get("provenance") or {}
    src = meta.get("source")
    commit = block.get("commit") or ((src or {}).get("commit") if isinstance(src, dict) else None)
    commit = commit or meta.get("git") or entry.get("commit")
    machine = meta.get("machine") if isinstance(meta.get("machine"), dict) else {}
    load = (block.get("load_average") or {}).get("end") or machine.get("load_average_at_end")
    load = load or meta.get("load_average")
    if isinstance(load, dict):
        load = load.get("end")
    load_text = f"{load[0]:.1f}" if isinstance(load, list) else (f"{load}" if load else "-")
    date = str(block.get("started") or meta.get("date") or meta.get("when") or "-")[:10]
    command = block.get("command") or meta.get("command") or entry.get("command")
    if not commit or not command:
        found = committed(path)
        command = command or found["command"]
    if commit:
        commit = str(commit)
        short = f"`{commit[:7]}`" if all(c in "0123456789abcdef" for c in commit) else commit
    else:
        short = "committed in " + ", ".join(f"`{c}`" for c in found["committed_in"])
    return Source(path, short, str(command), date, load_text)


def bench_row(
    report: Any, model: str, k: int | None, protocol: str | None, path: str
) -> dict[str, Any]:
    rows = [
        r
        for r in report["results"]
        if r["model"] == model and r.get("k") == k and protocol in (None, r["protocol"])
    ]
    if len(rows) != 1:
        raise ValueError(f"{path}: {len(rows)} rows for {model!r}, k={k}, protocol {protocol}")
    return rows[0]


def interval(row: dict[str, Any], metric: str) -> tuple[float, float]:
    low, high = row["ndcg20_ci95"] if metric == "ndcg@20" else row["intervals"][metric]
    return float(low), float(high)


def quality_line(entry: dict[str, Any]) -> tuple[str, Source]:
    """One row of the quality table: coldbrew's model against the best of ``against``."""
    metric, k = entry.get("metric", "ndcg@20"), entry.get("k")
    report = read(entry["report"])
    ours = bench_row(report, entry["model"], k, entry.get("protocol"), entry["report"])
    other_path, protocol = entry.get("against_report", entry["report"]), ours["protocol"]
    other = read(other_path)
    others = [bench_row(other, m, k, protocol, other_path) for m in entry["against"]]
    best = max(others, key=lambda r: r["metrics"][metric])
    a, b = ours["metrics"][metric], best["metrics"][metric]
    (a_lo, a_hi), (b_lo, b_hi) = interval(ours, metric), interval(best, metric)
    apart = "apart" if a_lo > b_hi or a_hi < b_lo else "overlapping"
    src = source(entry["report"], report, entry)
    cells = [
        entry["what"],
        f"{entry['model']} {a:.4f} [{a_lo:.3f}, {a_hi:.3f}]",
        f"{best['model']} {b:.4f} [{b_lo:.3f}, {b_hi:.3f}]",
        f"**{a / b:.2f}×**, {apart}",
    ]
    return " | ".join(cells), src


def bound_line(entry: dict[str, Any]) -> tuple[str, Source]:
    """One row of the shortfall table: a ``blend_bound.py`` report's default hybrid (its own
    weights), its best part and the best weightings on the test queries, against the best of
    ``against`` in the bench report ``against_report`` (the same split and seed)."""
    report = read(entry["report"])
    metric = report.get("metric", "ndcg@20")
    key = metric.replace("@", "")
    other = read(entry["against_report"])
    rows = [
        bench_row(other, m, None, report["protocol"], entry["against_report"])
        for m in entry["against"]
    ]
    best = max(rows, key=lambda r: r["metrics"][metric])
    base = best["metrics"][metric]

    def shown(fig: dict[str, Any]) -> str:
        low, high = fig["ci"]
        return f"{fig[key]:.4f} [{low:.3f}, {high:.3f}], {fig[key] / base:.2f}×"

    part = max(report["parts"], key=lambda name: report["parts"][name][key])
    cells = [
        f"{entry['what']} ({metric}, {report['queries']:,} queries)",
        shown(report["hybrid_weights"]),
        f"{part} {shown(report['parts'][part])}",
        shown(report["bound_one_weighting"]),
        shown(report["bound_per_bucket"]),
        f"{best['model']} {base:.4f}",
    ]
    return " | ".join(cells), source(entry["report"], report, entry)


def dotted(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def service_line(entry: dict[str, Any]) -> tuple[str, Source]:
    report = read(entry["report"])
    value = float(dotted(report, entry["value"]))
    if "per" in entry:
        value /= float(dotted(report, entry["per"]))
    text = f"{value:.4g}{entry.get('unit', '')}"
    return f"{entry['what']} | **{text}**", source(entry["report"], report, entry)


ABLATION_INTRO = (
    "The default hybrid against the same hybrid without its language-model parts (`hybrid_no_lm`:"
    " its zero-shot `lm` and `cf_map` parts dropped, every other part and the weight search"
    " unchanged), on the same split and seed (issue 24's ablation). A ratio near 1.00× means the"
    " language model adds nothing there."
)


def raw_line(entry: dict[str, Any], report: Any, commands: list[str]) -> str:
    """The line under a table drawn from one report: its link, note, commit, date, load and the
    number of its command (added to ``commands`` when new)."""
    src = source(entry["report"], report, entry)
    if src.command not in commands:
        commands.append(src.command)
    number = commands.index(src.command) + 1
    link = f"[{Path(src.report).name}]({src.report})"
    notes = f", [note]({entry['notes']})" if "notes" in entry else ""
    return f"Raw report {link}{notes}: {src.commit}, {src.date}, load {src.load}, command {number}."


def transfer_table(entry: dict[str, Any], commands: list[str]) -> list[str]:
    """A ``transfer.py`` report as a table: per held-out catalogue, zero-shot text against the
    text model trained on the other catalogues (NDCG@20 on its cold items)."""
    report = read(entry["report"])

    def cell(block: dict[str, Any]) -> str:
        low, high = block["ci"]
        return f"{block['ndcg@20']:.4f} [{low:.3f}, {high:.3f}]"

    out = [
        "| held out | zero-shot | own text, whitened | transferred from the other four "
        "| transferred ÷ zero-shot |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        ratio = row["transferred"]["ndcg@20"] / row["zeroshot"]["ndcg@20"]
        out.append(
            f"| {row['held_out']} | {cell(row['zeroshot'])} | {cell(row['whitened'])} "
            f"| {cell(row['transferred'])} | {ratio:.2f}× |"
        )
    return [*out, "", raw_line(entry, report, commands)]


def lodo_table(entry: dict[str, Any], commands: list[str]) -> list[str]:
    """A ``lodo_defaults.py rotate`` report as a table: per held-out dataset, the setting chosen
    on the others and the held-out dataset's validation ratio for it and for the shipped one."""
    report = read(entry["report"])
    out = [
        "| held out | chosen on the other four | the shipped default? | its geometric mean "
        "there | held out: chosen | held out: shipped |",
        "|---|---|---|---|---|---|",
    ]
    for held, row in report["rotations"].items():
        out.append(
            f"| {held} | {row['chosen']} | {'yes' if row['is_shipped'] else 'no'} "
            f"| {row['chosen_on_the_others']:.4f} | {row['held_out_ratio_chosen']:.4f} "
            f"| **{row['held_out_ratio_shipped']:.4f}** |"
        )
    return [*out, "", raw_line(entry, report, commands)]


def table(header: str, entries: list[dict[str, Any]], line: Any, commands: list[str]) -> list[str]:
    out = [header, "|" + "---|" * (header.count("|") - 1)]
    for entry in entries:
        cells, src = line(entry)
        if src.command not in commands:
            commands.append(src.command)
        number = commands.index(src.command) + 1
        link = f"[{Path(src.report).parent.name}/{Path(src.report).name}]({src.report})"
        notes = f"[note]({entry['notes']})" if "notes" in entry else ""
        out.append(
            f"| {cells} | {link} {notes} | {src.commit}, {src.date}, load {src.load}, "
            f"command {number} |"
        )
    return out


def script_topics() -> list[str]:
    out = ["## Scripts by topic", ""]
    for topic, scripts in TOPICS.items():
        out += [f"**{topic}**", ""]
        for name in scripts:
            tree = ast.parse((HERE / name).read_text())
            doc = (ast.get_docstring(tree) or "").split("\n\n")[0].replace("\n", " ")
            out.append(f"- [`{name}`]({name}): {doc}")
        out.append("")
    return out


def notes_index() -> list[str]:
    out = ["## Lab notes", "", "| begun | note |", "|---|---|"]
    for path in sorted((HERE / "notes").glob("*.md")):
        title = path.read_text().splitlines()[0].lstrip("# ").strip()
        out.append(f"| {path.name[:10]} | [{title}](notes/{path.name}) |")
    return out


def render() -> str:
    manifest = tomllib.loads((HERE / "current.toml").read_text())
    commands: list[str] = []
    lines = [INTRO, "## Current figures", ""]
    lines += [
        "### Quality",
        "",
        "coldbrew's default hybrid against the best other model named for the row, on the same "
        "split and seed, NDCG@20 unless the row names the metric, with 95% bootstrap intervals "
        "over test users.",
        "",
    ]
    lines += table(
        "| figure | coldbrew | best other | ratio | raw report | made at |",
        manifest["quality"],
        quality_line,
        commands,
    )
    lines += ["", "### The language model's share", "", ABLATION_INTRO, ""]
    lines += table(
        "| figure | coldbrew | without its language model | ratio | raw report | made at |",
        manifest["ablation"],
        quality_line,
        commands,
    )
    for entry in manifest.get("transfer", []):
        lines += ["", f"### {entry['what']}", "", entry["intro"], ""]
        lines += transfer_table(entry, commands)
    for entry in manifest.get("lodo", []):
        lines += ["", f"### {entry['what']}", "", entry["intro"], ""]
        lines += lodo_table(entry, commands)
    if manifest.get("bound"):
        lines += [
            "",
            "### Where a dataset stays short of 1.2×",
            "",
            "The best any weighting of the default hybrid's parts could do, chosen **on the "
            "test queries themselves** (`blend_bound.py`: evidence for a shortfall, never a way "
            "to choose): the hybrid with its own weights, its best part alone, the best single "
            "weighting and the best one per user bucket, each with its 95% interval and its "
            "ratio to the best baseline (the bench's figure on the same split).",
            "",
        ]
        lines += table(
            "| figure | hybrid, its weights | best part | best weighting on test | one per bucket "
            "| best baseline | raw report | made at |",
            manifest["bound"],
            bound_line,
            commands,
        )
    lines += ["", "### The service, the replay and refits", ""]
    lines += table(
        "| figure | value | raw report | made at |", manifest["service"], service_line, commands
    )
    lines += ["", "Commands, as each report records them (run from the repository root):", ""]
    lines += [f"{n}. `{command}`" for n, command in enumerate(commands, 1)]
    lines += ["", *script_topics(), *notes_index()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args()
    page, target = render(), HERE / "README.md"
    if args.check:
        if target.read_text() != page:
            print("benchmarks/README.md is stale: run python benchmarks/readme.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(page)
    print(f"wrote {target} ({page.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
