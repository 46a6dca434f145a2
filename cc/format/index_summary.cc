#include "cc/format/index_summary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tfdata_checkpoint {
namespace {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

// null when unknown; else a list of {"dtype": <DataType value>, "shape":
// null (unknown rank) or a list of dimensions, null where unknown (as
// TensorShape.as_list() gives them)}.
std::string ElementSpecJson(const std::optional<std::vector<ComponentSpec>>& spec) {
  if (!spec.has_value()) return "null";
  std::string out = "[";
  for (const ComponentSpec& component : *spec) {
    if (out.size() > 1) out += ", ";
    absl::StrAppend(&out, "{\"dtype\": ", component.dtype, ", \"shape\": ");
    if (component.unknown_rank) {
      out += "null}";
    } else {
      absl::StrAppend(&out, DimsString(component, ", ", "null"), "}");
    }
  }
  return out + "]";
}

}  // namespace

std::string IndexSummaryJson(const CheckpointIndex& index) {
  uint64_t num_tensors = 0;
  for (const EntryRecord& entry : index.entries) num_tensors += entry.tensors.size();
  std::string shards;
  for (const ShardRecord& shard : index.shards) {
    if (!shards.empty()) shards += ", ";
    absl::StrAppend(&shards, "{\"name\": ", JsonString(shard.name),
                    ", \"size\": ", shard.size, ", \"crc32c\": ", shard.crc32c, "}");
  }
  return absl::StrCat(
      "{\"format_version\": \"", index.major_version, ".", index.minor_version,
      "\", \"tf_version\": ", JsonString(index.tf_version),
      ", \"library_version\": ", JsonString(index.library_version),
      ", \"created_unix_micros\": ", index.created_unix_micros,
      ", \"total_bytes\": ", index.total_bytes,
      ", \"num_entries\": ", index.entries.size(), ", \"num_tensors\": ", num_tensors,
      ", \"element_spec\": ", ElementSpecJson(index.element_spec),
      ", \"shards\": [", shards, "]}");
}

}  // namespace tfdata_checkpoint
