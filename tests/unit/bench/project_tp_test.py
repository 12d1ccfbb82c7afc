#!/usr/bin/env python3
"""bench/gpu/project_tp.py: decode_bench's lines are parsed, and the communication model adds
what its formula says, worked out by hand below for one rank of Llama-3-70B at TP=4."""
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
import unittest

SOURCE = os.environ.get("SHARDWISE_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..", ".."))
spec = importlib.util.spec_from_file_location(
    "project_tp", os.path.join(SOURCE, "bench", "gpu", "project_tp.py"))
project_tp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project_tp)

CONFIG = {"hidden_size": 8192, "num_hidden_layers": 80, "vocab_size": 128256}
LOG = """\
decode  tp 4 rank 0 batch   1 context   128:   10.000 ms/step       100.0 tokens/s  (roofline)
decode  tp 4 rank 0 batch   1 context   128 without all-reduces:    9.000 ms/step (their ...)
decode  tp 8 rank 0 batch  16 context   128:    6.500 ms/step      2461.5 tokens/s  (roofline)
decode  tp 1 rank 0 batch   1 context   128:    5.900 ms/step       169.5 tokens/s  (roofline)
prefill tp 1 rank 0  2048 tokens:    50.00 ms    600.0 TFLOP/s
"""


class ProjectTpTest(unittest.TestCase):
    def test_parses_steps_and_compute_only_steps(self):
        found = project_tp.parse(LOG.splitlines())
        self.assertEqual(found[(4, 1, 128)], {"step": 10.0, "compute": 9.0})
        self.assertEqual(found[(8, 16, 128)], {"step": 6.5})
        self.assertEqual(found[(1, 1, 128)], {"step": 5.9})
        self.assertEqual(len(found), 3)

    def test_model_adds_latency_and_ring_traffic_per_collective(self):
        # 160 all-reduces of 1 x 8192 x 2 bytes: 10 us + 1.5 x 16384 B / 480 GB/s each;
        # one all-gather of 4 x 32064 fp32 logits: 10 us + 0.75 x 513024 B / 480 GB/s.
        all_reduce_us = 10 + 1.5 * 16384 / 480e9 * 1e6
        all_gather_us = 10 + 0.75 * 513024 / 480e9 * 1e6
        expected_comm_ms = (160 * all_reduce_us + all_gather_us) / 1e3
        step, comm = project_tp.project(9.0, 4, 1, CONFIG, 10.0, 480.0)
        self.assertAlmostEqual(comm, expected_comm_ms, places=12)
        self.assertAlmostEqual(step, 9.0 + expected_comm_ms, places=12)
        self.assertAlmostEqual(expected_comm_ms, 1.6189935, places=6)

    def _run(self, log_text):
        with tempfile.TemporaryDirectory() as folder:
            log = os.path.join(folder, "bench.log")
            config = os.path.join(folder, "config.json")
            with open(log, "w") as f:
                f.write(log_text)
            with open(config, "w") as f:
                json.dump(CONFIG, f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                status = project_tp.main([log, "--config", config])
            return status, out.getvalue()

    def test_table_marks_itself_a_projection(self):
        status, out = self._run(LOG)
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith("PROJECTION (not a measurement)"))
        row = [line for line in out.splitlines() if line.split()[:3] == ["4", "1", "128"]]
        self.assertEqual(len(row), 1)
        self.assertIn("%.1f" % (1e3 / (9.0 + 1.6189935)), row[0])  # 94.2 tokens/s inside a node

    def test_no_compute_only_lines_is_an_error(self):
        status, out = self._run(LOG.replace("without all-reduces", "with"))
        self.assertEqual(status, 1)
        self.assertIn("no 'without all-reduces' lines", out)


if __name__ == "__main__":
    sys.exit(unittest.main())
