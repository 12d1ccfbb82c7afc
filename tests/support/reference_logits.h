// Shared by the CPU and GPU model tests: reading transformers' reference tensors and comparing
// logits row by row.
#pragma once

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "models/safetensors.h"
#include "tests/support/test_support.h"

namespace shardwise::testing {

// The tensor `name` of a reference file, in fp32 (empty, with a failure, when missing).
inline std::vector<float> reference_tensor(const SafetensorsFile& file, const std::string& name) {
  const TensorView* view = file.find(name);
  EXPECT_NE(view, nullptr) << name;
  std::vector<float> values(view ? view->element_count() : 0);
  if (view) convert_to_f32(values.data(), view->data, view->dtype, values.size());
  return values;
}

// Per row of `vocab` logits: ||ours - expected|| / ||expected|| under `tolerance`.
inline void expect_rows_close(const std::vector<float>& ours, const std::vector<float>& expected,
                              int vocab, double tolerance, const std::string& what) {
  ASSERT_EQ(ours.size(), expected.size()) << what;
  for (std::size_t p = 0; p < expected.size() / vocab; ++p) {
    std::span<const float> a(ours.data() + p * vocab, vocab), b(expected.data() + p * vocab, vocab);
    EXPECT_TRUE(close_by_relative_error(a, b, tolerance)) << what << " row " << p;
  }
}

}  // namespace shardwise::testing
