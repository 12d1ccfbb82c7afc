#!/usr/bin/env python3
"""Projects tensor-parallel decode tokens/s from one rank's measured step (issue 5).

The GPU machine has one GPU, so decode_bench builds one rank's slice of a TP group and times its
step twice: with every collective replaced by a same-size device copy, and with the all-reduces
left out ("without all-reduces", the compute-only step). A projection adds a communication
model to the compute-only step:

    step = compute + all_reduces * t_all_reduce(batch * hidden * 2 bytes)
                   + t_all_gather(batch * vocab / tp * 4 bytes)
    t_all_reduce(b) = latency + 2 (tp - 1) / tp * b / bus_bandwidth      (ring, nccl-tests' busbw)
    t_all_gather(b) = latency + (tp - 1) / tp * tp * b / bus_bandwidth

with two links: inside one node (NVLink: 480 GB/s bus bandwidth, --nvlink-latency-us per
collective, an assumption: NCCL's small-message latency inside an H100 node is of that order)
and across nodes (46 us per small all-reduce, the issue's figure, and --network-gbs of bus
bandwidth). Every all-reduce of a Llama layer (two per layer: attention output and MLP down
projection) and the logits' all-gather pay that cost. The all-gather's stand-in copies stay in
the compute-only step, so the projection errs on the slow side. The output is a projection,
not a measurement, and says so.

    bench/gpu/project_tp.py bench.log --config bench/gpu/configs/llama-3-70b/config.json
"""
import argparse
import json
import re
import sys

GPT_FAST_70B_TP8_A100 = 62.5  # tokens/s, batch 1, bf16: gpt-fast's published figure

STEP = re.compile(
    r"^decode\s+tp (\d+) rank \d+ batch\s+(\d+) context\s+(\d+): +([0-9.]+) ms/step")
COMPUTE = re.compile(
    r"^decode\s+tp (\d+) rank \d+ batch\s+(\d+) context\s+(\d+) without all-reduces: +([0-9.]+) ms/step")


def parse(lines):
    """{(tp, batch, context): {"step": ms, "compute": ms}} from decode_bench's output."""
    found = {}
    for line in lines:
        for pattern, key in ((COMPUTE, "compute"), (STEP, "step")):
            match = pattern.match(line)
            if match:
                tp, batch, context, ms = match.groups()
                found.setdefault((int(tp), int(batch), int(context)), {})[key] = float(ms)
                break
    return found


def collective_us(bytes_, latency_us, bus_gbs, factor):
    """One collective: latency plus the ring's bus traffic (factor x bytes) at bus_gbs."""
    return latency_us + factor * bytes_ / (bus_gbs * 1e9) * 1e6


def project(compute_ms, tp, batch, config, latency_us, bus_gbs):
    """Projected step (ms) of a TP group whose collectives cost latency_us + bytes / bus_gbs."""
    hidden = config["hidden_size"]
    all_reduces = 2 * config["num_hidden_layers"]
    reduce_bytes = batch * hidden * 2  # bf16 activations
    gather_bytes = batch * config["vocab_size"] / tp * 4  # fp32 logits, this rank's slice
    comm_us = all_reduces * collective_us(reduce_bytes, latency_us, bus_gbs, 2 * (tp - 1) / tp)
    comm_us += collective_us(gather_bytes * tp, latency_us, bus_gbs, (tp - 1) / tp)
    return compute_ms + comm_us / 1e3, comm_us / 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", help="decode_bench output (e.g. $OUT/bench.log)")
    parser.add_argument("--config", required=True, help="the model's config.json")
    parser.add_argument("--nvlink-gbs", type=float, default=480.0,
                        help="NVLink all-reduce bus bandwidth inside a node (GB/s)")
    parser.add_argument("--nvlink-latency-us", type=float, default=10.0,
                        help="latency of one small collective inside a node (assumed)")
    parser.add_argument("--network-latency-us", type=float, default=46.0,
                        help="latency of one small all-reduce across nodes")
    parser.add_argument("--network-gbs", type=float, default=50.0,
                        help="bus bandwidth across nodes (GB/s; 400 Gb/s per GPU)")
    args = parser.parse_args(argv)
    with open(args.config) as f:
        config = json.load(f)
    with open(args.log) as f:
        measured = parse(f)
    rows = [(key, value) for key, value in sorted(measured.items())
            if key[0] > 1 and "compute" in value]
    if not rows:
        print("project_tp: no 'without all-reduces' lines at TP > 1 in " + args.log)
        return 1
    print("PROJECTION (not a measurement): one rank's measured compute-only decode step plus "
          "a model of its collectives; %d all-reduces per step" % (2 * config["num_hidden_layers"]))
    print("%3s %6s %8s %11s | %10s %12s | %10s %12s" % (
        "tp", "batch", "context", "compute ms", "NVLink ms", "tokens/s", "network ms",
        "tokens/s"))
    for (tp, batch, context), value in rows:
        compute = value["compute"]
        inside, _ = project(compute, tp, batch, config, args.nvlink_latency_us, args.nvlink_gbs)
        across, _ = project(compute, tp, batch, config, args.network_latency_us, args.network_gbs)
        print("%3d %6d %8d %11.3f | %10.3f %12.1f | %10.3f %12.1f" % (
            tp, batch, context, compute, inside, batch * 1e3 / inside, across,
            batch * 1e3 / across))
    print("gpt-fast, 70B at TP=8 on A100s, bf16, batch 1: %.1f tokens/s (published)"
          % GPT_FAST_70B_TP8_A100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
