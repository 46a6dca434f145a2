#include "cc/format/index_summary.h"

#include <algorithm>
#include <string>
#include <vector>

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
  // The files of earlier checkpoints this one needs (format 2.0): retention
  // must keep them as long as it keeps this checkpoint.
  std::vector<std::string> referenced_names;
  for (const ReferencedShard& r : ReferencedShards(index)) {
    referenced_names.push_back(index.streams[r.stream - 1].shards[r.shard].name);
  }
  std::sort(referenced_names.begin(), referenced_names.end());
  std::string referenced_files;
  for (const std::string& name : referenced_names) {
    if (!referenced_files.empty()) referenced_files += ", ";
    referenced_files += JsonString(name);
  }
  return absl::StrCat(
      "{\"format_version\": \"", index.major_version, ".", index.minor_version,
      "\", \"tf_version\": ", JsonString(index.tf_version),
      ", \"library_version\": ", JsonString(index.library_version),
      ", \"created_unix_micros\": ", index.created_unix_micros,
      ", \"total_bytes\": ", index.total_bytes, ", \"own_bytes\": ", index.total_bytes,
      ", \"referenced_bytes\": ", ReferencedBytes(index),
      ", \"referenced_files\": [", referenced_files, "]",
      ", \"num_entries\": ", index.entries.size(), ", \"num_tensors\": ", num_tensors,
      ", \"element_spec\": ", ElementSpecJson(index.element_spec),
      ", \"shards\": [", shards, "]}");
}

}  // namespace tfdata_checkpoint
