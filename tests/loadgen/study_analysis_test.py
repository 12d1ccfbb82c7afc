"""The study driver's pure parts against hand-worked cases: saturation points, scaling
efficiency, the expansion of a study file into deployments and points (and its errors), and
the stand-in tokenizer staged for checkpoints without one."""
import json
import os
import sys
import tempfile
import unittest

ROOT = os.environ.get("SHARDWISE_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "study"))
import analysis  # noqa: E402
import deployments  # noqa: E402
import study_config  # noqa: E402


def point(load, throughput):
    return {"load": load, "summary": {"output_throughput": throughput}}


class Saturation(unittest.TestCase):
    def test_first_load_within_ninety_percent_of_peak(self):
        # Peak 385; 0.9 x 385 = 346.5: 350 at load 4 is the first to reach it.
        pts = [point(16, 385), point(1, 100), point(2, 190), point(4, 350), point(8, 380)]
        self.assertEqual(analysis.saturation(pts)["load"], 4)
        self.assertEqual(analysis.peak(pts)["load"], 16)

    def test_linear_until_the_end(self):
        pts = [point(1, 100), point(2, 200), point(4, 400), point(8, 800), point(16, 810)]
        self.assertEqual(analysis.saturation(pts)["load"], 8)  # 729 <= 800

    def test_failed_points_and_empty(self):
        pts = [point(1, 100), {"load": 2, "error": "timeout"}]
        self.assertEqual(analysis.saturation(pts)["load"], 1)
        self.assertIsNone(analysis.saturation([]))
        self.assertIsNone(analysis.saturation([point(1, 0)]))


class Scaling(unittest.TestCase):
    def test_speedup_and_efficiency_over_the_baseline(self):
        deps = [{"name": n, "model_name": m, "tp": tp, "replicas": r}
                for n, m, tp, r in (("a1", "a", 1, 1), ("a2", "a", 2, 1), ("a-r2", "a", 1, 2),
                                    ("a22", "a", 2, 2), ("b2", "b", 2, 1))]
        # b has a single deployment: nothing to scale against.
        points = {"a1": [point(1, 50), point(2, 100)], "a2": [point(1, 150)],
                  "a-r2": [point(4, 190), point(8, 170)], "a22": [point(8, 200)],
                  "b2": [point(1, 10)]}
        rows = {r["deployment"]: r for r in analysis.scaling_rows(deps, points)}
        self.assertEqual(set(rows), {"a2", "a-r2", "a22"})
        self.assertEqual(rows["a2"]["kind"], "tp")
        self.assertAlmostEqual(rows["a2"]["speedup"], 1.5)
        self.assertAlmostEqual(rows["a2"]["efficiency"], 0.75)
        self.assertEqual(rows["a-r2"]["kind"], "replicas")
        self.assertAlmostEqual(rows["a-r2"]["speedup"], 1.9)  # its peak, 190
        self.assertAlmostEqual(rows["a-r2"]["efficiency"], 0.95)
        self.assertEqual(rows["a22"]["degree"], 4)
        self.assertAlmostEqual(rows["a22"]["efficiency"], 0.5)

    def test_smallest_deployment_is_the_baseline_without_tp1(self):
        deps = [{"name": n, "model_name": "big", "tp": tp, "replicas": 1}
                for n, tp in (("t8", 8), ("t4", 4))]
        (row,) = analysis.scaling_rows(deps, {"t4": [point(1, 100)], "t8": [point(1, 180)]})
        self.assertEqual((row["deployment"], row["kind"], row["base_tp"]), ("t8", "tp", 4))
        self.assertAlmostEqual(row["degree"], 2)
        self.assertAlmostEqual(row["efficiency"], 0.9)


STUDY = """
name: t
deployments:
  - model: assets/models/stories260K
    tp: [1, 2]
    replicas: [1, 2]
    capacity: 32
  - model: ../shared/testdata/hf-tiny/tiny-llama-gqa-f32
    name: gqa
sweep:
  concurrency: [1, 8]
  context_len: [64]
  output_len: [16]
loadgen:
  requests: 10
  requests_per_concurrency: 4
  ignore_eos: false
  slo: ttft=1s
"""


class StudyFile(unittest.TestCase):
    def load(self, text):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        try:
            return study_config.load_study(f.name, ROOT)
        finally:
            os.unlink(f.name)

    def test_expands_deployments_and_points(self):
        study = self.load(STUDY)
        self.assertEqual([d.name for d in study.deployments],
                         ["stories260K-tp1-r1", "stories260K-tp1-r2", "stories260K-tp2-r1",
                          "stories260K-tp2-r2", "gqa"])
        self.assertEqual(study.deployments[3].ranks, 4)
        self.assertEqual(study.deployments[0].capacity, 32)
        self.assertEqual(study.deployments[4].model_name, "tiny-llama-gqa-f32")
        self.assertEqual([p.name for p in study.points], ["c1-in48-out16", "c8-in48-out16"])
        args = study.points[1].loadgen_args
        self.assertEqual(args[args.index("--requests") + 1], "32")  # max(10, 4 x 8)
        self.assertIn("--no-ignore-eos", args)
        self.assertEqual(args[args.index("--input-len") + 1], "48")  # context 64 - output 16
        self.assertEqual(args[args.index("--slo") + 1], "ttft=1s")
        self.assertNotIn("--requests-per-concurrency", args)
        self.assertEqual(study.load_axis, "concurrency")

    def test_open_loop_points(self):
        study = self.load("deployments: [{model: m}]\nsweep: {rate: [0.5, 4]}\n"
                          "loadgen: {requests: 5}\n")
        self.assertEqual([p.name for p in study.points], ["rate0.5-in128-out128",
                                                          "rate4-in128-out128"])
        self.assertEqual(study.points[0].load, 0.5)
        args = study.points[0].loadgen_args
        self.assertEqual(args[args.index("--concurrency") + 1], "0")  # no cap

    def test_refuses_bad_files(self):
        for text, words in (
                ("deployments: [{model: m}]\nsweep: {concurrency: [1]}\nbogus: 1\n", "bogus"),
                ("deployments: [{model: m, tpp: 2}]\nsweep: {concurrency: [1]}\n", "tpp"),
                ("deployments: [{model: m}]\nsweep: {concurrency: [1], rate: [1]}\n", "exactly"),
                ("deployments: [{model: m}]\nsweep: {}\n", "exactly"),
                ("deployments: [{model: m, tp: 0}]\nsweep: {concurrency: [1]}\n", "positive"),
                ("deployments: [{model: m}]\nsweep: {concurrency: [1]}\n"
                 "loadgen: {concurrency: 3}\n", "set by the sweep"),
                ("deployments: [{launcher: slurm, model: m}]\nsweep: {concurrency: [1]}\n",
                 "launcher"),
                ("deployments: [{tp: 1}]\nsweep: {concurrency: [1]}\n", "model"),
                ("deployments: [{model: m}, {model: m}]\nsweep: {concurrency: [1]}\n",
                 "duplicate"),
                ("deployments: [{model: m}]\nsweep: {concurrency: [1], context_len: [8],"
                 " output_len: [8]}\n", "no room"),
                ("sweep: {concurrency: [1]}\n", "deployments"),
                ("deployments: [\n", "YAML")):
            with self.assertRaises(study_config.StudyError, msg=text) as caught:
                self.load(text)
            self.assertIn(words, str(caught.exception), text)


class StandInTokenizer(unittest.TestCase):
    def test_pads_the_vocabulary_to_the_model(self):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "tiny")
            os.makedirs(model)
            with open(os.path.join(model, "config.json"), "w") as f:
                json.dump({"vocab_size": 700}, f)
            d = study_config.Deployment(
                name="tiny", launcher="mpirun", model_dir=model, model_name="tiny",
                tokenizer_from=os.path.join(ROOT, "assets", "models", "stories260K"))
            stage = deployments.servable_model(d, os.path.join(tmp, "stage"))
            self.assertTrue(os.path.islink(os.path.join(stage, "config.json")))
            with open(os.path.join(stage, "tokenizer.json")) as f:
                vocab = json.load(f)["model"]["vocab"]
            self.assertEqual(sorted(vocab.values()), list(range(700)))
            with open(os.path.join(model, "config.json"), "w") as f:
                json.dump({"vocab_size": 100}, f)  # smaller than the stand-in's 512
            with self.assertRaises(deployments.DeploymentError):
                deployments.servable_model(d, os.path.join(tmp, "stage"))
            # A model folder with its own tokenizer is served as it is.
            d.model_dir = d.tokenizer_from
            self.assertEqual(deployments.servable_model(d, tmp), d.tokenizer_from)


if __name__ == "__main__":
    unittest.main()
