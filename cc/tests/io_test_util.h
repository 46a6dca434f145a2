// Helpers of the tests that write and read checkpoint files: a temporary
// directory, tensors, state comparison, file edits and error checks.
#ifndef TFDATA_CHECKPOINT_CC_TESTS_IO_TEST_UTIL_H_
#define TFDATA_CHECKPOINT_CC_TESTS_IO_TEST_UTIL_H_

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cc/state/captured_state.h"
#include "cc/state/restored_state.h"
#include "cc/tests/check.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"

namespace tfdata_checkpoint {
namespace testing {

using tensorflow::Env;
using tensorflow::Tensor;
using tensorflow::TensorShape;

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/tfdc_io_XXXXXX");
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (path_.empty()) return;
    int64_t files = 0, dirs = 0;
    Env::Default()->DeleteRecursively(path_, &files, &dirs).IgnoreError();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Tensor Floats(int64_t n, float base) {
  Tensor t(tensorflow::DT_FLOAT, TensorShape({n}));
  for (int64_t i = 0; i < n; ++i) t.flat<float>()(i) = base + static_cast<float>(i);
  return t;
}

inline bool SameTensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == tensorflow::DT_STRING) {
    for (int64_t i = 0; i < a.NumElements(); ++i) {
      if (a.flat<tensorflow::tstring>()(i) != b.flat<tensorflow::tstring>()(i)) return false;
    }
    return true;
  }
  return a.tensor_data() == b.tensor_data();
}

// Every entry and value of `captured` is in `restored`, in order.
inline bool SameState(const CapturedState& captured, const RestoredState& restored) {
  if (restored.num_entries() != captured.entries().size()) return false;
  for (size_t e = 0; e < restored.num_entries(); ++e) {
    const CapturedEntry& entry = captured.entries()[e];
    if (restored.metadata(e) != entry.metadata) return false;
    if (restored.type_names[restored.type_name_ids[e]] !=
        captured.type_names()[entry.type_name_id]) {
      return false;
    }
    if (restored.first_value[e + 1] - restored.first_value[e] != entry.values.size()) {
      return false;
    }
    for (size_t i = 0; i < entry.values.size(); ++i) {
      const CapturedValue& value = entry.values[i];
      const uint64_t v = restored.first_value[e] + i;
      if (value.inline_scalar) {
        if (!restored.is_scalar(v) || restored.scalar(v) != value.scalar) return false;
      } else if (restored.is_scalar(v) || !SameTensor(restored.tensor(v), value.tensor)) {
        return false;
      }
    }
  }
  return true;
}

// Applies `edit` to the bytes of the file at `path`.
template <typename Edit>
void EditFile(const std::string& path, Edit edit) {
  std::string bytes;
  CHECK_TRUE(tensorflow::ReadFileToString(Env::Default(), path, &bytes).ok());
  edit(&bytes);
  CHECK_TRUE(tensorflow::WriteStringToFile(Env::Default(), path, bytes).ok());
}

inline bool Names(const absl::Status& s, absl::StatusCode code, const std::string& path) {
  const bool ok = s.code() == code && absl::StrContains(s.message(), path);
  if (!ok) std::printf("  got %s, wanted code %d naming %s\n", s.ToString().c_str(),
                       static_cast<int>(code), path.c_str());
  return ok;
}

}  // namespace testing
}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_TESTS_IO_TEST_UTIL_H_
