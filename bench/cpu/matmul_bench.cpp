// The CPU matmul (kernels/cpu/matmul.h) on a model's layer shapes, against the machine's read
// bandwidth (decode: 1-8 input rows, weights rotated through 512 MiB so that they come from
// memory) and against OpenBLAS sgemm at prefill sizes (the choice of prefill GEMM). Debian's
// OpenBLAS 0.3.21 is built without BFLOAT16, so it has no sbgemm to compare with.
//
//   bin/matmul_bench --shape 1b --threads 2 [--isa avx2] [--types bf16,int8]
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bench/cpu/read_bandwidth.h"
#include "common/dtype.h"
#include "kernels/cpu/cpu_threads.h"
#include "kernels/cpu/matmul.h"

namespace shardwise {
namespace {

using cpu::PackedMatrix;
using cpu::WeightMatrix;
using cpu::WeightType;

struct Options {
  std::string shape = "1b";
  int threads = 0;
  std::string isa;
  std::vector<std::string> types{"bf16", "int8", "f32"};
  std::vector<int> decode_rows{1, 2, 4, 8, 16};
  std::vector<int> prefill_rows{128, 512};
  int repeats = 5;
  bool openblas = true;
  bool amx = true;
};

struct LayerShape {
  const char* name;
  int n, k;
};

// Llama-3.2-1B and stories110M, a Llama-2 shape (hidden 768, 12 heads, FFN 2048, vocab 32000).
std::vector<LayerShape> shapes_of(const std::string& shape) {
  if (shape == "110m") {
    return {{"qkv", 2304, 768},
            {"o_proj", 768, 768},
            {"gate_up", 6144, 768},
            {"down", 768, 3072},
            {"lm_head", 32000, 768}};
  }
  return {{"qkv", 3072, 2048},
          {"o_proj", 2048, 2048},
          {"gate_up", 16384, 2048},
          {"down", 2048, 8192},
          {"lm_head", 128256, 2048}};
}

double median_seconds(const std::function<void()>& run, int repeats) {
  run();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The weight as the model holds it: row-major in its stored type (read in place), int8 packed.
struct BenchWeight {
  std::vector<uint16_t> bf16;
  WeightMatrix matrix;
};

void make_weight(BenchWeight& out, const LayerShape& s, WeightType type,
                 const std::vector<float>& weight) {
  const cpu::MatrixRows f32_rows{reinterpret_cast<const std::byte*>(weight.data()), DType::kF32,
                                 s.n, s.k};
  if (type == WeightType::kBF16) {
    out.bf16.resize(weight.size());
    for (std::size_t i = 0; i < weight.size(); ++i) out.bf16[i] = f32_to_bf16(weight[i]);
    out.matrix = WeightMatrix::row_major(
        {{reinterpret_cast<const std::byte*>(out.bf16.data()), DType::kBF16, s.n, s.k}}, s.k);
  } else if (type == WeightType::kF32) {
    out.matrix = WeightMatrix::row_major({f32_rows}, s.k);
  } else {
    out.matrix = WeightMatrix::packed(PackedMatrix::pack({&f32_rows, 1}, s.k, type));
  }
}

void bench_decode(const Options& o, const LayerShape& s, WeightType type, cpu::CpuIsa isa,
                  const std::vector<float>& weight, double bandwidth) {
  // Enough copies that a pass reads 512 MiB: far past the last-level cache.
  std::vector<BenchWeight> copies(1);
  make_weight(copies[0], s, type, weight);
  const std::size_t bytes = copies[0].matrix.bytes();
  const std::size_t count = std::max<std::size_t>(1, (std::size_t{512} << 20) / bytes);
  copies.resize(count);
  for (std::size_t c = 1; c < count; ++c) make_weight(copies[c], s, type, weight);
  for (int m : o.decode_rows) {
    std::vector<float> in(static_cast<std::size_t>(m) * s.k, 0.5f),
        out(static_cast<std::size_t>(m) * s.n);
    const double seconds = median_seconds(
        [&] {
          for (const BenchWeight& w : copies) cpu::matmul(out.data(), in.data(), m, w.matrix, isa);
        },
        o.repeats);
    const double gbps = copies.size() * bytes / seconds / 1e9;
    std::printf(
        "decode  %-5s %-7s %-8s n=%-6d k=%-5d m=%-3d %8.2f GB/s %5.0f%% of read bw %8.1f GFLOP/s\n",
        std::string(cpu::weight_type_name(type)).c_str(),
        std::string(cpu::cpu_isa_name(isa)).c_str(), s.name, s.n, s.k, m, gbps,
        100 * gbps / bandwidth, 2.0 * m * s.n * s.k * copies.size() / seconds / 1e9);
  }
}

void bench_prefill(const Options& o, const LayerShape& s, WeightType type, cpu::CpuIsa isa,
                   const std::vector<float>& weight) {
  BenchWeight w;
  make_weight(w, s, type, weight);
  for (int m : o.prefill_rows) {
    std::vector<float> in(static_cast<std::size_t>(m) * s.k, 0.5f),
        out(static_cast<std::size_t>(m) * s.n);
    const double seconds =
        median_seconds([&] { cpu::matmul(out.data(), in.data(), m, w.matrix, isa); }, o.repeats);
    std::printf("prefill %-5s %-7s %-8s n=%-6d k=%-5d m=%-4d %8.1f GFLOP/s\n",
                std::string(cpu::weight_type_name(type)).c_str(),
                std::string(cpu::cpu_isa_name(isa)).c_str(), s.name, s.n, s.k, m,
                2.0 * m * s.n * s.k / seconds / 1e9);
  }
}

// OpenBLAS sgemm on the same shapes and fp32 weights, its pthread pool sized to --threads.
void bench_openblas(const Options& o, const LayerShape& s, const std::vector<float>& weight) {
  for (int m : o.prefill_rows) {
    std::vector<float> in(static_cast<std::size_t>(m) * s.k, 0.5f),
        out(static_cast<std::size_t>(m) * s.n);
    const double seconds = median_seconds(
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, s.n, s.k, 1.0f, in.data(), s.k,
                      weight.data(), s.k, 0.0f, out.data(), s.n);
        },
        o.repeats);
    std::printf("prefill openblas-sgemm  %-8s n=%-6d k=%-5d m=%-4d %8.1f GFLOP/s\n", s.name, s.n,
                s.k, m, 2.0 * m * s.n * s.k / seconds / 1e9);
  }
}

int run(const Options& o) {
  cpu::set_cpu_threads(o.threads);
  cpu::allow_amx(o.amx);
  openblas_set_num_threads(o.threads > 0 ? o.threads : openblas_get_num_procs());
  cpu::CpuIsa isa = cpu::best_cpu_isa();
  if (!o.isa.empty()) {
    auto parsed = cpu::cpu_isa_from_name(o.isa);
    if (!parsed || !cpu::cpu_supports(*parsed)) {
      std::fprintf(stderr, "--isa %s: unknown or not supported by this CPU\n", o.isa.c_str());
      return 1;
    }
    isa = *parsed;
  }
  const auto bandwidth = bench::measure_read_bandwidth();
  std::printf("cpu %s\n", cpu::cpu_description().c_str());
  std::printf("read_bandwidth_gbps best %.2f median %.2f\n", bandwidth.best_gbps,
              bandwidth.median_gbps);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const LayerShape& s : shapes_of(o.shape)) {
    std::vector<float> weight(static_cast<std::size_t>(s.n) * s.k);
    for (float& value : weight) value = normal(rng);
    for (const std::string& name : o.types) {
      auto type = cpu::weight_type_from_name(name);
      if (!type) {
        std::fprintf(stderr, "unknown type %s\n", name.c_str());
        return 1;
      }
      bench_decode(o, s, *type, isa, weight, bandwidth.best_gbps);
      bench_prefill(o, s, *type, isa, weight);
    }
    if (o.openblas) bench_openblas(o, s, weight);
  }
  return 0;
}

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  shardwise::Options o;
  CLI::App app{"CPU matmul: decode against read bandwidth, prefill against OpenBLAS"};
  app.add_option("--shape", o.shape, "1b (Llama-3.2-1B) or 110m")->capture_default_str();
  app.add_option("--threads", o.threads, "OpenMP threads (0: all cores)")->capture_default_str();
  app.add_option("--isa", o.isa, "scalar, avx2 or avx512 (default: the best this CPU has)");
  app.add_option("--types", o.types, "Weight types")->delimiter(',');
  app.add_option("--decode-rows", o.decode_rows, "Input rows of decode steps")->delimiter(',');
  app.add_option("--prefill-rows", o.prefill_rows, "Input rows of prefill")->delimiter(',');
  app.add_option("--repeats", o.repeats, "Timed runs (median)")->capture_default_str();
  app.add_flag("!--no-openblas", o.openblas, "Skip the OpenBLAS comparison");
  app.add_flag("!--no-amx", o.amx,
               "Keep bf16 matmuls on the AVX-512 kernels where the CPU has AMX");
  CLI11_PARSE(app, argc, argv);
  return shardwise::run(o);
}
