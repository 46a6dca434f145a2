#include "cc/format/tensor_codec.h"

#include <string>

#include "absl/status/status.h"
#include "cc/tests/check.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/framework/resource_handle.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Tensor;
using tensorflow::TensorShape;

std::string Concat(const TensorPayload& payload) {
  std::string out;
  for (absl::string_view chunk : payload.chunks) out.append(chunk.data(), chunk.size());
  return out;
}

TensorRecord RecordFor(const Tensor& t, const TensorPayload& payload) {
  TensorRecord record;
  record.dtype = t.dtype();
  record.encoding = payload.encoding;
  for (int d = 0; d < t.dims(); ++d) record.shape.push_back(t.dim_size(d));
  record.length = payload.size;
  return record;
}

TFDC_TEST(RawTensorsAreNotCopied) {
  Tensor t(tensorflow::DT_FLOAT, TensorShape({3, 2}));
  for (int i = 0; i < 6; ++i) t.flat<float>()(i) = i * 1.5f;
  TensorPayload payload;
  CHECK_TRUE(EncodeTensor(t, &payload).ok());
  CHECK_TRUE(payload.encoding == TensorEncoding::kRaw);
  CHECK_EQ_VAL(payload.chunks.size(), size_t{1});
  CHECK_TRUE(payload.chunks[0].data() == t.tensor_data().data());
  Tensor back;
  CHECK_TRUE(AllocateTensor(RecordFor(t, payload), &back).ok());
  const std::string bytes = Concat(payload);
  std::copy(bytes.begin(), bytes.end(), RawBuffer(&back));
  CHECK_EQ_VAL(back.flat<float>()(5), 7.5f);
}

TFDC_TEST(StringsRoundTrip) {
  Tensor t(tensorflow::DT_STRING, TensorShape({4}));
  t.flat<tensorflow::tstring>()(0) = "";
  t.flat<tensorflow::tstring>()(1) = std::string("a\0b", 3);
  t.flat<tensorflow::tstring>()(2) = std::string(100000, 'x');
  t.flat<tensorflow::tstring>()(3) = "last";
  TensorPayload payload;
  CHECK_TRUE(EncodeTensor(t, &payload).ok());
  CHECK_TRUE(payload.encoding == TensorEncoding::kStringList);
  CHECK_EQ_VAL(payload.size, uint64_t{32 + 3 + 100000 + 4});
  const TensorRecord record = RecordFor(t, payload);
  Tensor back;
  CHECK_TRUE(AllocateTensor(record, &back).ok());
  CHECK_TRUE(DecodeTensor(record, Concat(payload), &back).ok());
  for (int i = 0; i < 4; ++i) {
    CHECK_TRUE(back.flat<tensorflow::tstring>()(i) == t.flat<tensorflow::tstring>()(i));
  }
  std::string damaged = Concat(payload);
  damaged[0] = 9;  // First length no longer adds up.
  CHECK_TRUE(absl::IsDataLoss(DecodeTensor(record, damaged, &back)));
}

// Dtypes without a flat byte layout (variants, resources) go through a
// TensorProto; a resource handle stands in for them here because variant
// payload helpers are not exported for use outside TensorFlow.
TFDC_TEST(NonFlatDtypesUseTensorProto) {
  Tensor t(tensorflow::DT_RESOURCE, TensorShape({2}));
  tensorflow::ResourceHandle handle;
  handle.set_name("shuffle_seed_generator");
  handle.set_container("localhost");
  t.flat<tensorflow::ResourceHandle>()(1) = handle;
  TensorPayload payload;
  CHECK_TRUE(EncodeTensor(t, &payload).ok());
  CHECK_TRUE(payload.encoding == TensorEncoding::kTensorProto);
  const TensorRecord record = RecordFor(t, payload);
  Tensor back;
  CHECK_TRUE(AllocateTensor(record, &back).ok());
  CHECK_TRUE(DecodeTensor(record, Concat(payload), &back).ok());
  CHECK_TRUE(back.flat<tensorflow::ResourceHandle>()(1).name() == "shuffle_seed_generator");
  TensorRecord wrong_shape = record;
  wrong_shape.shape = {3};
  CHECK_TRUE(absl::IsDataLoss(DecodeTensor(wrong_shape, Concat(payload), &back)));
  CHECK_TRUE(absl::IsDataLoss(DecodeTensor(record, "\xff\xff\xff", &back)));
}

TFDC_TEST(IndexThatDisagreesWithTheDtypeIsDataLoss) {
  TensorRecord record;
  record.dtype = tensorflow::DT_FLOAT;
  record.shape = {4};
  record.length = 15;  // 4 floats are 16 bytes.
  Tensor t;
  CHECK_TRUE(absl::IsDataLoss(AllocateTensor(record, &t)));
  record.length = 16;
  record.dtype = 12345;
  CHECK_TRUE(absl::IsDataLoss(AllocateTensor(record, &t)));
  record.dtype = tensorflow::DT_FLOAT;
  record.encoding = TensorEncoding::kStringList;
  CHECK_TRUE(absl::IsDataLoss(AllocateTensor(record, &t)));
  record.encoding = TensorEncoding::kRaw;
  record.shape = {int64_t{1} << 62, int64_t{1} << 62};
  CHECK_TRUE(absl::IsDataLoss(AllocateTensor(record, &t)));
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
