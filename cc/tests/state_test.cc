// StateWriter and StateReader without files: what the writer captures is
// what TF's VariantTensorDataWriter would produce, and the reader finds it.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "cc/state/captured_state.h"
#include "cc/state/element_spec.h"
#include "cc/state/restored_state.h"
#include "cc/state/state_reader.h"
#include "cc/state/state_writer.h"
#include "cc/tests/check.h"
#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Tensor;
using tensorflow::TensorShape;

Tensor Floats(int n, float base) {
  Tensor t(tensorflow::DT_FLOAT, TensorShape({n}));
  for (int i = 0; i < n; ++i) t.flat<float>()(i) = base + i;
  return t;
}

// What a checkpoint round trip gives the reader.
void ToRestored(const CapturedState& captured, RestoredState* restored) {
  restored->type_names = captured.type_names();
  for (const CapturedEntry& entry : captured.entries()) {
    restored->AddEntry(entry.type_name_id, entry.metadata);
    for (const CapturedValue& value : entry.values) {
      if (value.inline_scalar) {
        restored->AddScalar(value.scalar);
      } else {
        restored->AddTensor(value.tensor);
      }
    }
  }
  restored->Finish();
}

TFDC_TEST(WriterGroupsKeysByNameInFirstWriteOrder) {
  CapturedState state;
  StateWriter writer(&state);
  CHECK_TRUE(writer.WriteScalar("it::b", "n", 3).ok());
  CHECK_TRUE(writer.WriteTensor("it::b", "t", Floats(4, 1)).ok());
  CHECK_TRUE(writer.WriteScalar("it::a", "s", tensorflow::tstring("hello")).ok());
  CHECK_TRUE(writer.WriteScalar("it::b", "late", -7).ok());
  CHECK_EQ_VAL(state.entries().size(), size_t{2});
  CHECK_TRUE(state.entries()[0].metadata == "it::b@@n@@t@@late");
  CHECK_TRUE(state.entries()[1].metadata == "it::a@@s");
  CHECK_TRUE(state.type_names().size() == 1 &&
             state.type_names()[0] == "tensorflow::Iterator");
  const CapturedEntry& b = state.entries()[0];
  CHECK_EQ_VAL(b.values.size(), size_t{3});
  CHECK_TRUE(b.values[0].inline_scalar && b.values[0].scalar == 3);
  CHECK_TRUE(!b.values[1].inline_scalar && b.values[1].tensor.NumElements() == 4);
  CHECK_TRUE(b.values[2].inline_scalar && b.values[2].scalar == -7);
  // The tensor is the caller's buffer, not a copy.
  Tensor t = Floats(2, 0);
  CHECK_TRUE(writer.WriteTensor("it::c", "t", t).ok());
  CHECK_TRUE(state.entries()[2].values[0].tensor.tensor_data().data() ==
             t.tensor_data().data());
}

TFDC_TEST(WriterRejectsTheMetadataDelimiter) {
  CapturedState state;
  StateWriter writer(&state);
  CHECK_TRUE(absl::IsInvalidArgument(writer.WriteScalar("it", "a@@b", 1)));
  CHECK_TRUE(absl::IsInvalidArgument(writer.WriteScalar("i@@t", "a", 1)));
  CHECK_TRUE(absl::IsInvalidArgument(writer.WriteScalar("no-full-name", 1)));
}

TFDC_TEST(ReaderFindsEveryValue) {
  CapturedState captured;
  StateWriter writer(&captured);
  CHECK_TRUE(writer.WriteScalar("it::b", "n", 3).ok());
  CHECK_TRUE(writer.WriteTensor("it::b", "t", Floats(4, 1)).ok());
  CHECK_TRUE(writer.WriteScalar("it::a", "s", tensorflow::tstring("hello")).ok());
  for (int i = 0; i < 40; ++i) {  // Enough keys for the hashed lookup.
    CHECK_TRUE(writer.WriteScalar("it::many", absl::StrCat("k", i), i * 10).ok());
  }
  RestoredState restored;
  ToRestored(captured, &restored);
  std::unique_ptr<StateReader> reader;
  CHECK_TRUE(StateReader::Create(&restored, "ckpt", &reader).ok());

  int64_t n = 0;
  CHECK_TRUE(reader->ReadScalar("it::b", "n", &n).ok());
  CHECK_EQ_VAL(n, int64_t{3});
  Tensor t;
  CHECK_TRUE(reader->ReadTensor("it::b", "t", &t).ok());
  CHECK_TRUE(t.NumElements() == 4 && t.flat<float>()(3) == 4.0f);
  // An inline scalar asked for as a tensor becomes one.
  CHECK_TRUE(reader->ReadTensor("it::b", "n", &t).ok());
  CHECK_TRUE(t.dtype() == tensorflow::DT_INT64 && t.dims() == 0 &&
             t.scalar<int64_t>()() == 3);
  tensorflow::tstring s;
  CHECK_TRUE(reader->ReadScalar("it::a", "s", &s).ok());
  CHECK_TRUE(s == "hello");
  CHECK_TRUE(reader->ReadScalar("it::many", "k37", &n).ok());
  CHECK_EQ_VAL(n, int64_t{370});
  CHECK_TRUE(reader->Contains("it::many", "k0"));
  CHECK_TRUE(!reader->Contains("it::many", "k40"));
  CHECK_TRUE(!reader->Contains("it::nothing", "k0"));

  const absl::Status missing = reader->ReadScalar("it::zzz", "n", &n);
  CHECK_TRUE(absl::IsNotFound(missing));
  CHECK_TRUE(missing.message().find("ckpt") != absl::string_view::npos);
  CHECK_TRUE(absl::IsNotFound(reader->ReadScalar("it::b", "zzz", &n)));
  CHECK_TRUE(absl::IsInvalidArgument(reader->ReadScalar("it::b", "t", &n)));
  CHECK_TRUE(absl::IsInvalidArgument(reader->ReadScalar("it::b", "n", &s)));
}

TFDC_TEST(ReaderTakesTheLastValueOfARepeatedKey) {
  CapturedState captured;
  StateWriter writer(&captured);
  CHECK_TRUE(writer.WriteScalar("it", "k", 1).ok());
  CHECK_TRUE(writer.WriteScalar("it", "k", 2).ok());
  RestoredState restored;
  ToRestored(captured, &restored);
  std::unique_ptr<StateReader> reader;
  CHECK_TRUE(StateReader::Create(&restored, "ckpt", &reader).ok());
  int64_t v = 0;
  CHECK_TRUE(reader->ReadScalar("it", "k", &v).ok());
  CHECK_EQ_VAL(v, int64_t{2});
}

TFDC_TEST(ReaderRejectsMetadataThatDoesNotNameEveryValue) {
  for (const char* metadata : {"it@@a", "it@@a@@b@@c", "it"}) {
    RestoredState restored;
    restored.type_names = {"tensorflow::Iterator"};
    restored.AddEntry(0, metadata);
    restored.AddScalar(1);
    restored.AddScalar(2);
    restored.Finish();
    std::unique_ptr<StateReader> reader;
    const absl::Status s = StateReader::Create(&restored, "ckpt", &reader);
    CHECK_TRUE(absl::IsDataLoss(s));
  }
}

TFDC_TEST(ElementSpecCheck) {
  using tensorflow::PartialTensorShape;
  const tensorflow::DataTypeVector dtypes = {tensorflow::DT_INT64, tensorflow::DT_STRING};
  const std::vector<PartialTensorShape> shapes = {PartialTensorShape({-1, 3}),
                                                  PartialTensorShape()};
  const std::vector<ComponentSpec> saved = ElementSpecOf(dtypes, shapes);
  CHECK_TRUE(saved[1].unknown_rank);
  CHECK_TRUE(CheckElementSpec(saved, dtypes, shapes, "p").ok());
  // Unknown (format 1.0, SaveIteratorShards): nothing to check.
  CHECK_TRUE(CheckElementSpec(std::nullopt, {tensorflow::DT_FLOAT}, {}, "p").ok());
  // A known dimension where the saved one was unknown, and any shape where
  // the rank was unknown, are compatible.
  CHECK_TRUE(CheckElementSpec(saved, dtypes,
                              {PartialTensorShape({2, 3}), PartialTensorShape({7})}, "p")
                 .ok());
  // Another dtype, another dimension, another rank, another component count.
  const absl::Status dtype = CheckElementSpec(
      saved, {tensorflow::DT_INT64, tensorflow::DT_FLOAT}, shapes, "dir/ckpt-7");
  CHECK_TRUE(absl::IsInvalidArgument(dtype));
  CHECK_TRUE(absl::StrContains(dtype.message(), "dir/ckpt-7"));
  CHECK_TRUE(absl::StrContains(dtype.message(), "(int64 [?,3], string <unknown>)"));
  CHECK_TRUE(absl::StrContains(dtype.message(), "(int64 [?,3], float <unknown>)"));
  CHECK_TRUE(absl::IsInvalidArgument(CheckElementSpec(
      saved, dtypes, {PartialTensorShape({-1, 4}), PartialTensorShape()}, "p")));
  CHECK_TRUE(absl::IsInvalidArgument(CheckElementSpec(
      saved, dtypes, {PartialTensorShape({3}), PartialTensorShape()}, "p")));
  CHECK_TRUE(absl::IsInvalidArgument(
      CheckElementSpec(saved, {tensorflow::DT_INT64}, {PartialTensorShape({-1, 3})}, "p")));
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
