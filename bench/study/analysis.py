"""The study's arithmetic, apart from the plots so that it can be tested by hand-worked cases.

- saturation: the lowest load whose output throughput reaches SATURATION_FRACTION of the
  deployment's peak; past it, more load buys latency, not throughput.
- scaling: peak output throughput of a deployment over that of its baseline (TP=1 with one
  replica of the same model); efficiency = speed-up / degree (ideal: 1).
"""

SATURATION_FRACTION = 0.9


def ok_points(points):
    """Points that produced a summary, sorted by load."""
    return sorted((p for p in points if p.get("summary")), key=lambda p: p["load"])


def saturation(points, fraction=SATURATION_FRACTION):
    """The point (a dict with "load" and "summary") at which the deployment saturates, or None."""
    points = ok_points(points)
    if not points:
        return None
    peak = max(p["summary"]["output_throughput"] for p in points)
    if peak <= 0:
        return None
    return next(p for p in points if p["summary"]["output_throughput"] >= fraction * peak)


def peak(points):
    """The point of highest output throughput, or None."""
    points = ok_points(points)
    return max(points, key=lambda p: p["summary"]["output_throughput"]) if points else None


def scaling_rows(deployments, points_by_deployment):
    """One row per deployment against its model's baseline, TP=1 with one replica (or, where
    that was not run, the smallest deployment of the model): the kind of scaling ("tp" when
    the replicas match the baseline's, "replicas" when the TP does, else "tp x replicas"), the
    relative degree (ranks / baseline ranks, the ideal speed-up), the baseline and peak output
    tok/s, the speed-up and the efficiency (speed-up / relative degree)."""
    peaks = {}
    for d in deployments:
        best = peak(points_by_deployment.get(d["name"], []))
        if best is not None:
            peaks[(d["model_name"], d["tp"], d["replicas"])] = (d["name"],
                                                                best["summary"]["output_throughput"])
    rows = []
    for model in sorted({key[0] for key in peaks}):
        sizes = sorted(((tp, r) for m, tp, r in peaks if m == model),
                       key=lambda size: (size[0] * size[1], size[0]))
        base_tp, base_replicas = sizes[0]
        base = peaks[(model, base_tp, base_replicas)][1]
        if base <= 0:
            continue
        for tp, replicas in sizes[1:]:
            name, value = peaks[(model, tp, replicas)]
            kind = ("tp" if replicas == base_replicas else
                    "replicas" if tp == base_tp else "tp x replicas")
            degree = tp * replicas / (base_tp * base_replicas)
            speedup = value / base
            rows.append({"model": model, "deployment": name, "kind": kind, "tp": tp,
                         "replicas": replicas, "base_tp": base_tp,
                         "base_replicas": base_replicas, "degree": degree, "baseline": base,
                         "peak": value, "speedup": speedup, "efficiency": speedup / degree})
    return rows
