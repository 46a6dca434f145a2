#include "cc/state/element_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tfdata_checkpoint {
namespace {

bool Compatible(const ComponentSpec& a, const ComponentSpec& b) {
  if (a.dtype != b.dtype) return false;
  if (a.unknown_rank || b.unknown_rank) return true;
  if (a.dims.size() != b.dims.size()) return false;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    if (a.dims[d] != -1 && b.dims[d] != -1 && a.dims[d] != b.dims[d]) return false;
  }
  return true;
}

// As in TensorFlow's messages: "int64 [?,3]", "string <unknown>".
std::string SpecString(const std::vector<ComponentSpec>& spec) {
  return absl::StrCat(
      "(",
      absl::StrJoin(spec, ", ",
                    [](std::string* out, const ComponentSpec& c) {
                      absl::StrAppend(
                          out,
                          tensorflow::DataTypeString(static_cast<tensorflow::DataType>(c.dtype)),
                          " ");
                      if (c.unknown_rank) {
                        out->append("<unknown>");
                        return;
                      }
                      out->append(DimsString(c, ",", "?"));
                    }),
      ")");
}

}  // namespace

std::vector<ComponentSpec> ElementSpecOf(
    const tensorflow::DataTypeVector& dtypes,
    const std::vector<tensorflow::PartialTensorShape>& shapes) {
  std::vector<ComponentSpec> spec(dtypes.size());
  for (size_t i = 0; i < dtypes.size(); ++i) {
    spec[i].dtype = static_cast<uint32_t>(dtypes[i]);
    if (i >= shapes.size() || shapes[i].unknown_rank()) {
      spec[i].unknown_rank = true;
      continue;
    }
    for (int d = 0; d < shapes[i].dims(); ++d) spec[i].dims.push_back(shapes[i].dim_size(d));
  }
  return spec;
}

absl::Status CheckElementSpec(const std::optional<std::vector<ComponentSpec>>& saved,
                              const tensorflow::DataTypeVector& dtypes,
                              const std::vector<tensorflow::PartialTensorShape>& shapes,
                              const std::string& prefix) {
  if (!saved.has_value()) return absl::OkStatus();
  const std::vector<ComponentSpec> expected = ElementSpecOf(dtypes, shapes);
  bool fits = saved->size() == expected.size();
  for (size_t i = 0; fits && i < expected.size(); ++i) {
    fits = Compatible((*saved)[i], expected[i]);
  }
  if (fits) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "Checkpoint ", prefix, " holds the state of an iterator whose elements are ",
      SpecString(*saved), ", but this iterator's elements are ", SpecString(expected),
      ": it belongs to another input pipeline. Restore it into the pipeline it was saved "
      "from."));
}

}  // namespace tfdata_checkpoint
