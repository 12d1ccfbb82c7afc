"""The report of a finished study (DIR/results.json): report.md and PNG plots in DIR.

Per model: throughput against latency (output tok/s vs p50/p99 TTFT and TPOT, one curve per
deployment) and latency percentiles against load with the saturation point marked; for the
study: speed-up against TP degree and replicas with the ideal line.
Usage: python3 bench/study/report.py DIR
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analysis  # noqa: E402

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:gray"]


def ms(point, metric, stat):
    value = point["summary"][metric].get(stat)
    return None if value is None else value * 1e3


def load_label(axis):
    return "concurrency (requests in flight)" if axis == "concurrency" else "request rate (req/s)"


def load_short(axis, value):
    return f"c={value:g}" if axis == "concurrency" else f"{value:g} req/s"


def by_model(results):
    models = {}
    for d in results["deployments"]:
        models.setdefault(d["model_name"], []).append(d)
    return models


def plot_throughput_latency(model, deps, points, axis, path):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, metric, title in ((axes[0], "ttft_s", "time to first token"),
                              (axes[1], "tpot_s", "time per output token")):
        for color, d in zip(COLORS, deps):
            pts = analysis.ok_points(points.get(d["name"], []))
            if not pts:
                continue
            x = [p["summary"]["output_throughput"] for p in pts]
            for stat, style, marker in (("median", "-", "o"), ("p99", "--", "^")):
                ax.plot(x, [ms(p, metric, stat) for p in pts], style, marker=marker,
                        color=color, markersize=5)
            for p, xv in zip(pts, x):
                ax.annotate(f"{p['load']:g}", (xv, ms(p, metric, "median")), fontsize=7,
                            textcoords="offset points", xytext=(3, -9), color=color)
        ax.set_yscale("log")
        ax.set_xlabel("output throughput (tokens/s)")
        ax.set_ylabel(f"{metric[:4].upper()} (ms, log scale)")
        ax.set_title(f"{model}: {title} vs throughput")
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=c, lw=2, label=d["name"]) for c, d in zip(COLORS, deps)]
    handles += [Line2D([], [], color="black", ls="-", marker="o", label="p50"),
                Line2D([], [], color="black", ls="--", marker="^", label="p99")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=9,
               title=f"numbers beside the p50 markers: {load_label(axis)}", title_fontsize=8)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * (len(handles) > 6), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency_vs_load(model, deps, points, axis, path):
    cols = len(deps)
    fig, axes = plt.subplots(3, cols, figsize=(4.2 * cols + 0.8, 10), squeeze=False,
                             sharey="row")
    for col, d in enumerate(deps):
        pts = analysis.ok_points(points.get(d["name"], []))
        sat = analysis.saturation(pts)
        loads = [p["load"] for p in pts]
        top, mid, bottom = axes[0][col], axes[1][col], axes[2][col]
        top.plot(loads, [p["summary"]["output_throughput"] for p in pts], "-o", color="tab:blue")
        top.set_title(d["name"], fontsize=10)
        for ax, metric in ((mid, "ttft_s"), (bottom, "tpot_s")):
            for stat, color in (("median", "tab:green"), ("p90", "tab:orange"),
                                ("p99", "tab:red")):
                ax.plot(loads, [ms(p, metric, stat) for p in pts], "-o", color=color,
                        markersize=4, label="p50" if stat == "median" else stat)
            ax.set_yscale("log")
        for ax in (top, mid, bottom):
            if axis == "concurrency":
                ax.set_xscale("log", base=2)
                ax.set_xticks(loads, [f"{v:g}" for v in loads])
                ax.minorticks_off()
            ax.grid(True, which="both", alpha=0.3)
            if sat is not None:
                ax.axvline(sat["load"], color="black", ls=":", lw=1.5)
        if sat is not None:
            top.annotate(f"saturates at {load_short(axis, sat['load'])}\n"
                         f"({sat['summary']['output_throughput']:.0f} tok/s)",
                         (sat["load"], sat["summary"]["output_throughput"]), fontsize=8,
                         textcoords="offset points", xytext=(6, -26))
        bottom.set_xlabel(load_label(axis))
        if not pts:
            top.text(0.5, 0.5, "no results", transform=top.transAxes, ha="center")
    axes[0][0].set_ylabel("output throughput (tokens/s)")
    axes[1][0].set_ylabel("TTFT (ms, log scale)")
    axes[2][0].set_ylabel("TPOT (ms, log scale)")
    axes[1][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{model}: throughput and latency percentiles vs load "
                 f"(dotted line: saturation, {analysis.SATURATION_FRACTION:.0%} of peak "
                 "throughput)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scaling(rows, path):
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    panels = ((axes[0], ("tp",), lambda r: r["tp"], lambda r: r["base_tp"],
               "TP degree (ranks per replica)", "TP"),
              (axes[1], ("replicas",), lambda r: r["replicas"], lambda r: r["base_replicas"],
               "replicas", "replicas"),
              (axes[2], ("tp x replicas",), lambda r: r["tp"] * r["replicas"],
               lambda r: r["base_tp"] * r["base_replicas"], "ranks (TP x replicas, both > 1)",
               "TP x replicas"))
    for ax, kinds, size, base_size, label, title in panels:
        kind_rows = [r for r in rows if r["kind"] in kinds]
        ticks = set()
        bases = sorted({base_size(r) for r in kind_rows})
        for base in bases:
            top = max(size(r) for r in kind_rows if base_size(r) == base)
            ax.plot([base, top], [1, top / base], "k--",
                    label="ideal (linear)" if base == bases[0] else None)
        for color, model in zip(COLORS, sorted({r["model"] for r in kind_rows})):
            mine = sorted((r for r in kind_rows if r["model"] == model), key=size)
            xs = [base_size(mine[0])] + [size(r) for r in mine]
            ys = [1.0] + [r["speedup"] for r in mine]
            ticks.update(xs)
            ax.plot(xs, ys, "-o", color=color, label=model)
            for r in mine:
                ax.annotate(f"{r['efficiency']:.0%}", (size(r), r["speedup"]), fontsize=8,
                            color=color, textcoords="offset points", xytext=(5, 3))
        if not kind_rows:
            ax.text(0.5, 0.5, f"no {title} scaling in this study", transform=ax.transAxes,
                    ha="center")
        ax.set_xticks(sorted(ticks) or [1])
        ax.set_xlabel(label)
        ax.set_ylabel("speed-up of peak output throughput (x)")
        ax.set_title(f"scaling with {title} (labels: efficiency)", fontsize=11)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if kind_rows:
            ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_average(point):
    m = point.get("machine") or {}
    start, end = m.get("load_average_start"), m.get("load_average_end")
    return f"{start[0]:.1f}-{end[0]:.1f}" if start and end else "-"


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def header_lines(results):
    m, v = results["machine"], results["versions"]
    dirty = " (with uncommitted changes)" if v.get("commit_dirty") else ""
    load = (f"{m['load_average_start'][0]:.2f} at the start, "
            f"{m.get('load_average_end', [0])[0]:.2f} at the end (1-minute)")
    return [f"# Scaling study: {results['study']}", "",
            results.get("description") or "", "",
            f"- command: `{results['command']}`",
            f"- study file: `{results['study_file']}` (copied into results.json)",
            f"- run: {results['started_at']} to {results.get('finished_at', '?')}",
            f"- machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
            f"kernel {m.get('kernel')}; GPUs: {', '.join(m.get('gpus') or []) or 'none'}",
            f"- load average: {load}",
            f"- commit: `{v.get('commit')}` on {v.get('branch')}{dirty}",
            f"- versions: {v.get('mpirun')}; gRPC {v.get('grpc')}; "
            f"CUDA: {v.get('cuda') or 'none'}; Python {v.get('python')}", ""]


def deployment_table(results, points, axis):
    lines = ["| deployment | TP | replicas | peak output tok/s (at) | saturates at | "
             "TTFT p50 / p99 at saturation (ms) | TPOT p50 / p99 at saturation (ms) | "
             "errors | server = loadgen tokens | loadgen CPU, max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for d in results["deployments"]:
        pts = points.get(d["name"], [])
        if d.get("skipped") or d.get("error"):
            lines.append(f"| {d['name']} | {d['tp']} | {d['replicas']} | "
                         f"{'skipped: ' + d['skipped'] if d.get('skipped') else 'failed'} "
                         "| | | | | | |")
            continue
        best, sat = analysis.peak(pts), analysis.saturation(pts)
        errors = sum(p["summary"]["errors"] for p in pts if p.get("summary")) + \
            sum(1 for p in pts if p.get("error"))
        agree = [c.get("agree") for p in pts if p.get("server")
                 for c in p["server"].get("counters", []) if c.get("metric")]
        cpu = max((p["client"]["cpu_utilization"] for p in pts if p.get("client")), default=0)
        lines.append(
            f"| {d['name']} | {d['tp']} | {d['replicas']} | "
            f"{fmt(best and best['summary']['output_throughput'], 0)} "
            f"({load_short(axis, best['load']) if best else '-'}) | "
            f"{load_short(axis, sat['load']) if sat else '-'} | "
            f"{fmt(sat and ms(sat, 'ttft_s', 'median'))} / {fmt(sat and ms(sat, 'ttft_s', 'p99'))} | "
            f"{fmt(sat and ms(sat, 'tpot_s', 'median'), 2)} / "
            f"{fmt(sat and ms(sat, 'tpot_s', 'p99'), 2)} | {errors} | "
            f"{'yes, at all ' + str(len(agree)) + ' points' if agree and all(agree) else 'NO' if agree else 'not scraped'} | "
            f"{cpu:.0%} |")
    return lines


def point_tables(results, points, axis):
    lines = []
    for d in results["deployments"]:
        pts = sorted(points.get(d["name"], []),
                     key=lambda p: (p["input_len"], p["output_len"], p["load"]))
        if not pts:
            continue
        lines += [f"### {d['name']}", "",
                  f"| {axis} | in/out | requests | req/s | output tok/s | TTFT p50 / p90 / p99 "
                  "(ms) | TPOT p50 / p90 / p99 (ms) | ITL p99 (ms) | E2E p50 (ms) | tokens / "
                  "message | errors | goodput (req/s) | loadgen CPU | load average |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in pts:
            s = p.get("summary")
            if not s:
                lines.append(f"| {p['load']:g} | {p['input_len']}/{p['output_len']} | "
                             f"failed: {p.get('error', '?')} | | | | | | | | | | | |")
                continue
            lines.append(
                f"| {p['load']:g} | {p['input_len']}/{p['output_len']} | {s['sent']} | "
                f"{s['request_throughput']:.2f} | {s['output_throughput']:.0f} | "
                f"{fmt(ms(p, 'ttft_s', 'median'))} / {fmt(ms(p, 'ttft_s', 'p90'))} / "
                f"{fmt(ms(p, 'ttft_s', 'p99'))} | {fmt(ms(p, 'tpot_s', 'median'), 2)} / "
                f"{fmt(ms(p, 'tpot_s', 'p90'), 2)} / {fmt(ms(p, 'tpot_s', 'p99'), 2)} | "
                f"{fmt(ms(p, 'itl_s', 'p99'), 2)} | {fmt(ms(p, 'e2e_s', 'median'), 0)} | "
                f"{fmt(s.get('tokens_per_message'), 2)} | {s['errors']} | {fmt(s.get('goodput'), 2)} | "
                f"{p['client']['cpu_utilization']:.0%} | {load_average(p)} |")
        lines.append("")
    return lines


def scaling_table(rows):
    lines = ["| model | deployment | scaling | degree | baseline tok/s | peak tok/s | speed-up | "
             "efficiency |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['deployment']} | {r['kind']} | {r['degree']:g} | "
                     f"{r['baseline']:.0f} | {r['peak']:.0f} | {r['speedup']:.2f}x | "
                     f"{r['efficiency']:.0%} |")
    return lines


METHOD = (
    "Each deployment is started, waited for (`/health` 200 with every replica live), driven by "
    "`shardwise-loadgen` at every sweep point, and stopped. Figures are over the measured "
    "requests (warm-up excluded): TTFT is the time to the first message carrying tokens, TPOT = "
    "(end-to-end - TTFT) / (output tokens - 1), ITL every gap between token messages; tokens / "
    "message above 1 means the coordinator sent tokens in batches because the client had not "
    "taken them yet (the coordinator or the client was short of CPU), which shows as a small "
    "TPOT and a TTFT close to the end-to-end latency. A deployment **saturates** at the lowest "
    "load whose output throughput reaches {fraction:.0%} of its peak; **speed-up** is its peak "
    "output throughput over that of TP=1 with one replica of the same model (its smallest "
    "deployment where that was not run), **efficiency** the speed-up over the relative degree "
    "(TP x replicas). The server's token counter delta (`/metrics`) is compared with the sum of "
    "the responses' usage at every point. Raw per-request JSON: `raw/DEPLOYMENT/POINT.json.gz`; "
    "logs: `runs/DEPLOYMENT/`.")


def shape_sections(results, axis, out_dir):
    """The findings, scaling and plots of each prompt/output shape of the sweep."""
    shapes = sorted({(p["input_len"], p["output_len"]) for p in results["points"]},
                    key=lambda s: [int(v.split("-")[0]) for v in s])
    lines = []
    for input_len, output_len in shapes:
        points = {}
        for p in results["points"]:
            if (p["input_len"], p["output_len"]) == (input_len, output_len):
                points.setdefault(p["deployment"], []).append(p)
        suffix = f"-in{input_len}-out{output_len}" if len(shapes) > 1 else ""
        title = f"{input_len} prompt tokens, {output_len} output tokens"
        lines += [f"## Findings: {title}", ""] + deployment_table(results, points, axis) + [""]
        rows = analysis.scaling_rows(results["deployments"], points)
        if rows:
            plot_scaling(rows, os.path.join(out_dir, f"scaling{suffix}.png"))
            lines += ["### Scaling", ""] + scaling_table(rows)
            lines += ["", f"![scaling](scaling{suffix}.png)", ""]
        for model, deps in by_model(results).items():
            ran = [d for d in deps if analysis.ok_points(points.get(d["name"], []))]
            if not ran:
                continue
            tl = f"throughput-latency-{model}{suffix}.png"
            lv = f"latency-vs-load-{model}{suffix}.png"
            plot_throughput_latency(model, ran, points, axis, os.path.join(out_dir, tl))
            plot_latency_vs_load(model, ran, points, axis, os.path.join(out_dir, lv))
            lines += [f"### {model}", "", f"![throughput vs latency]({tl})", "",
                      f"![latency vs load]({lv})", ""]
    return lines


def write_report(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        results = json.load(f)
    axis = results.get("load_axis", "concurrency")
    lines = header_lines(results)
    lines += ["## Method", "", METHOD.format(fraction=analysis.SATURATION_FRACTION), ""]
    lines += shape_sections(results, axis, out_dir)
    points = {}
    for p in results["points"]:
        points.setdefault(p["deployment"], []).append(p)
    lines += ["## Every point", ""] + point_tables(results, points, axis)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    write_report(os.path.abspath(sys.argv[1]))
