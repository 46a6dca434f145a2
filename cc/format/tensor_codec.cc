#include "cc/format/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "cc/format/byte_codec.h"
#include "tensorflow/core/framework/tensor.pb.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/tstring.h"

namespace tfdata_checkpoint {

using tensorflow::DataType;
using tensorflow::Tensor;
using tensorflow::TensorShape;

TensorEncoding EncodingFor(DataType dtype) {
  if (dtype == tensorflow::DT_STRING) return TensorEncoding::kStringList;
  if (tensorflow::DataTypeCanUseMemcpy(dtype)) return TensorEncoding::kRaw;
  return TensorEncoding::kTensorProto;
}

absl::Status EncodeTensor(const Tensor& tensor, TensorPayload* payload) {
  payload->encoding = EncodingFor(tensor.dtype());
  payload->chunks.clear();
  payload->owned.clear();
  switch (payload->encoding) {
    case TensorEncoding::kRaw: {
      const absl::string_view data = tensor.tensor_data();
      payload->chunks.push_back(data);
      payload->size = data.size();
      return absl::OkStatus();
    }
    case TensorEncoding::kStringList: {
      const auto strings = tensor.flat<tensorflow::tstring>();
      const int64_t n = strings.size();
      payload->owned.resize(8 * n);
      uint64_t size = 8 * n;
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t len = strings(i).size();
        StoreLittleEndian(len, 8, &payload->owned[8 * i]);
        size += len;
      }
      payload->chunks.reserve(n + 1);
      payload->chunks.push_back(payload->owned);
      for (int64_t i = 0; i < n; ++i) {
        if (!strings(i).empty()) {
          payload->chunks.emplace_back(strings(i).data(), strings(i).size());
        }
      }
      payload->size = size;
      return absl::OkStatus();
    }
    case TensorEncoding::kTensorProto: {
      tensorflow::TensorProto proto;
      tensor.AsProtoField(&proto);
      if (!proto.SerializeToString(&payload->owned)) {
        return absl::InternalError(absl::StrCat(
            "Could not serialize a ", tensorflow::DataTypeString(tensor.dtype()),
            " tensor of the iterator state"));
      }
      payload->chunks.push_back(payload->owned);
      payload->size = payload->owned.size();
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown encoding");
}

absl::Status AllocateTensor(const TensorRecord& record, Tensor* tensor) {
  const int dtype_value = static_cast<int>(record.dtype);
  if (!tensorflow::DataType_IsValid(dtype_value) ||
      record.dtype == tensorflow::DT_INVALID ||
      tensorflow::IsRefType(static_cast<DataType>(dtype_value))) {
    return absl::DataLossError(absl::StrCat("invalid dtype ", record.dtype));
  }
  const DataType dtype = static_cast<DataType>(dtype_value);
  if (record.encoding != EncodingFor(dtype)) {
    return absl::DataLossError(
        absl::StrCat("encoding ", static_cast<int>(record.encoding),
                     " does not fit dtype ", tensorflow::DataTypeString(dtype)));
  }
  TensorShape shape;
  absl::Status status = TensorShape::BuildTensorShape(record.shape, &shape);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat("invalid shape: ", status.message()));
  }
  if (record.encoding == TensorEncoding::kRaw) {
    const uint64_t expected =
        static_cast<uint64_t>(shape.num_elements()) * tensorflow::DataTypeSize(dtype);
    if (expected != record.length) {
      return absl::DataLossError(absl::StrCat(
          "a ", tensorflow::DataTypeString(dtype), " tensor of shape ",
          shape.DebugString(), " needs ", expected, " bytes, the index says ",
          record.length));
    }
  } else if (record.encoding == TensorEncoding::kStringList &&
             record.length / 8 < static_cast<uint64_t>(shape.num_elements())) {
    return absl::DataLossError("string tensor shorter than its lengths");
  }
  if (record.encoding == TensorEncoding::kTensorProto) {
    return absl::OkStatus();  // DecodeTensor builds it from the proto.
  }
  *tensor = Tensor(dtype, shape);
  if (!tensor->IsInitialized()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "could not allocate ", record.length, " bytes for a restored tensor"));
  }
  return absl::OkStatus();
}

char* RawBuffer(Tensor* tensor) {
  return const_cast<char*>(tensor->tensor_data().data());
}

absl::Status DecodeTensor(const TensorRecord& record, absl::string_view bytes,
                          Tensor* tensor) {
  if (record.encoding == TensorEncoding::kStringList) {
    auto strings = tensor->flat<tensorflow::tstring>();
    const int64_t n = strings.size();
    const uint64_t header = 8 * static_cast<uint64_t>(n);
    uint64_t pos = header;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t len = LoadLittleEndian(bytes.data() + 8 * i, 8);
      if (len > bytes.size() - pos) {
        return absl::DataLossError("string lengths run past the tensor's bytes");
      }
      strings(i).assign(bytes.data() + pos, len);
      pos += len;
    }
    if (pos != bytes.size()) {
      return absl::DataLossError("string lengths do not add up to the tensor's bytes");
    }
    return absl::OkStatus();
  }
  if (record.encoding == TensorEncoding::kTensorProto) {
    tensorflow::TensorProto proto;
    if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
        !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError("could not parse a serialized tensor");
    }
    if (!tensor->FromProto(proto) ||
        static_cast<uint32_t>(tensor->dtype()) != record.dtype ||
        tensor->shape().dims() != static_cast<int>(record.shape.size())) {
      return absl::DataLossError("serialized tensor does not match the index");
    }
    for (int d = 0; d < tensor->shape().dims(); ++d) {
      if (tensor->shape().dim_size(d) != record.shape[d]) {
        return absl::DataLossError("serialized tensor does not match the index");
      }
    }
    return absl::OkStatus();
  }
  return absl::InternalError("DecodeTensor called for a raw tensor");
}

}  // namespace tfdata_checkpoint
