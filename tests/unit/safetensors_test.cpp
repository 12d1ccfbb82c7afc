#include "models/safetensors.h"

#include <cstring>
#include <fstream>

#include "tests/support/test_support.h"

namespace shardwise {
namespace {

// Writes a safetensors file with a hand-made header and `data_bytes` bytes of data.
std::filesystem::path write_raw(const std::filesystem::path& dir, const std::string& header,
                                const std::string& data, uint64_t declared_header_size = 0) {
  const auto path = dir / "raw.safetensors";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t size = declared_header_size ? declared_header_size : header.size();
  out.write(reinterpret_cast<const char*>(&size), 8);
  out << header << data;
  return path;
}

Status open_status(const std::filesystem::path& path) {
  auto file = SafetensorsFile::open(path);
  return file.ok() ? ok_status() : file.status();
}

void expect_error(const Status& status, StatusCode code, const std::string& needle) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_EQ(status.code(), code) << status.to_string();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.to_string();
}

class SafetensorsTest : public ::testing::Test {
 protected:
  std::filesystem::path dir_ =
      testing::scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
};

TEST_F(SafetensorsTest, RoundTripsF32Tensors) {
  const std::vector<float> a{1, 2, 3, 4, 5, 6}, b{-1.5f};
  ASSERT_TRUE(
      write_safetensors(dir_ / "t.safetensors", {{"a", {2, 3}, a.data()}, {"b", {1}, b.data()}})
          .ok());
  auto file = SafetensorsFile::open(dir_ / "t.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  const TensorView* view = (*file)->find("a");
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> read(6);
  convert_to_f32(read.data(), view->data, view->dtype, 6);
  EXPECT_EQ(read, a);
  EXPECT_EQ((*file)->find("missing"), nullptr);
}

TEST_F(SafetensorsTest, ConvertsF16AndBF16) {
  // f16: 1.0, -2.5, smallest subnormal 2^-24; bf16: 1.0, -2.0
  const uint16_t f16[] = {0x3C00, 0xC100, 0x0001};
  const uint16_t bf16[] = {0x3F80, 0xC000};
  std::string data(reinterpret_cast<const char*>(f16), 6);
  data.append(reinterpret_cast<const char*>(bf16), 4);
  auto path = write_raw(dir_,
                        R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                        R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}})",
                        data);
  auto file = SafetensorsFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  std::vector<float> halves(3), brains(2);
  convert_to_f32(halves.data(), (*file)->find("h")->data, DType::kF16, 3);
  convert_to_f32(brains.data(), (*file)->find("b")->data, DType::kBF16, 2);
  EXPECT_EQ(halves, (std::vector<float>{1.0f, -2.5f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(brains, (std::vector<float>{1.0f, -2.0f}));
}

TEST_F(SafetensorsTest, TruncatedFileNamesTheTensor) {
  const auto source = testing::testdata_dir() / "hf-tiny/tiny-llama-gqa-f32/model.safetensors";
  const std::string bytes = testing::read_text_file(source);
  const auto path = dir_ / "truncated.safetensors";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 1000);
  auto status = open_status(path);
  expect_error(status, StatusCode::kDataLoss, "outside");
  EXPECT_NE(status.message().find("truncated.safetensors"), std::string::npos);
  EXPECT_NE(status.message().find("tensor '"), std::string::npos);
}

TEST_F(SafetensorsTest, FileShorterThanTheLengthPrefix) {
  const auto path = dir_ / "tiny.safetensors";
  std::ofstream(path, std::ios::binary) << "abc";
  expect_error(open_status(path), StatusCode::kDataLoss, "too short");
}

TEST_F(SafetensorsTest, HeaderLengthPastTheEnd) {
  expect_error(open_status(write_raw(dir_, "{}", "", 1000)), StatusCode::kDataLoss,
               "exceeds the file size");
}

TEST_F(SafetensorsTest, OffsetsPastTheEnd) {
  auto path =
      write_raw(dir_, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", "12345678");
  expect_error(open_status(path), StatusCode::kDataLoss,
               "tensor 'w': data_offsets [0, 16] lie outside");
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  auto path = write_raw(dir_,
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::string(12, '\0'));
  expect_error(open_status(path), StatusCode::kDataLoss, "overlap");
}

// Two same-sized tensors with their data_offsets exchanged pass every per-tensor check; the
// file's layout (data in header order, or in name order) is what gives them away.
TEST_F(SafetensorsTest, SwappedOffsetsAreRefused) {
  const std::string data(16, '\0');
  auto path = write_raw(dir_,
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                        data);
  expect_error(open_status(path), StatusCode::kDataLoss, "swapped data_offsets");
  // The same bytes in header order, and a file laid out by name though its header is not
  // (older safetensors writers), both load.
  path = write_raw(dir_,
                   R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                   data);
  EXPECT_TRUE(open_status(path).ok()) << open_status(path).to_string();
  path = write_raw(dir_,
                   R"({"z":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                   R"("y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                   data);
  EXPECT_TRUE(open_status(path).ok()) << open_status(path).to_string();
  // Swapping two layers of a real checkpoint is refused too.
  const auto source = testing::testdata_dir() / "hf-tiny/tiny-llama-gqa-f32/model.safetensors";
  std::string bytes = testing::read_text_file(source);
  const std::string q0 =
      R"("model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[64,64],"data_offsets":[)";
  const std::string q1 =
      R"("model.layers.1.self_attn.q_proj.weight":{"dtype":"F32","shape":[64,64],"data_offsets":[)";
  const std::size_t at0 = bytes.find(q0), at1 = bytes.find(q1);
  ASSERT_NE(at0, std::string::npos);
  ASSERT_NE(at1, std::string::npos);
  const std::size_t end0 = bytes.find(']', at0 + q0.size()),
                    end1 = bytes.find(']', at1 + q1.size());
  const std::string offsets0 = bytes.substr(at0 + q0.size(), end0 - at0 - q0.size());
  const std::string offsets1 = bytes.substr(at1 + q1.size(), end1 - at1 - q1.size());
  ASSERT_EQ(offsets0.size(), offsets1.size());  // same digit count: the header keeps its size
  bytes.replace(at1 + q1.size(), offsets1.size(), offsets0);
  bytes.replace(at0 + q0.size(), offsets0.size(), offsets1);
  const auto swapped = dir_ / "swapped.safetensors";
  std::ofstream(swapped, std::ios::binary) << bytes;
  expect_error(open_status(swapped), StatusCode::kDataLoss, "swapped data_offsets");
}

TEST_F(SafetensorsTest, GapsAndTrailingBytesAreRefused) {
  auto path = write_raw(dir_,
                        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                        std::string(12, '\0'));
  expect_error(open_status(path), StatusCode::kDataLoss, "leave a gap");
  path = write_raw(dir_, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                   std::string(8, '\0'));
  expect_error(open_status(path), StatusCode::kDataLoss, "4 bytes after the last tensor");
  path = write_raw(dir_, std::string(1000, '[') + std::string(1000, ']'), "");
  expect_error(open_status(path), StatusCode::kDataLoss, "nests deeper");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  auto path = write_raw(dir_, R"({"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}})", "ab");
  expect_error(open_status(path), StatusCode::kDataLoss, "tensor 'w': unsupported dtype 'Q4_K'");
}

TEST_F(SafetensorsTest, ByteSizeDisagreesWithShape) {
  auto path =
      write_raw(dir_, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678");
  expect_error(open_status(path), StatusCode::kDataLoss, "needs 12");
}

TEST_F(SafetensorsTest, MalformedJsonHeader) {
  auto path = write_raw(dir_, R"({"w":{"dtype":"F32",)", "");
  expect_error(open_status(path), StatusCode::kDataLoss, "not a JSON object");
}

TEST_F(SafetensorsTest, MissingFile) {
  expect_error(open_status(dir_ / "absent.safetensors"), StatusCode::kNotFound,
               "absent.safetensors");
}

}  // namespace
}  // namespace shardwise
