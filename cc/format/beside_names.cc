#include "cc/format/beside_names.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tfdata_checkpoint {
namespace {

bool AllOf(absl::string_view s, bool (*pred)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), pred);
}
bool IsLowerHex(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); }
bool IsDigit(char c) { return absl::ascii_isdigit(c) != 0; }

// `.index`, `.index.tmp-<hex>` or `.data-<hex>-<digits>-of-<digits>`:
// whether `kind` is one, and which.
bool ParseKind(absl::string_view kind, bool* is_index, bool* is_shard) {
  *is_index = kind == ".index";
  *is_shard = absl::StartsWith(kind, ".data-");
  if (*is_index) return true;
  if (absl::ConsumePrefix(&kind, ".index.tmp-")) return AllOf(kind, IsLowerHex);
  if (!absl::ConsumePrefix(&kind, ".data-")) return false;
  const size_t dash = kind.find('-');
  if (dash == absl::string_view::npos || !AllOf(kind.substr(0, dash), IsLowerHex)) return false;
  kind.remove_prefix(dash + 1);
  const size_t of = kind.find("-of-");
  return of != absl::string_view::npos && AllOf(kind.substr(0, of), IsDigit) &&
         AllOf(kind.substr(of + 4), IsDigit);
}

// `<token>-<part><kind>` after an infix.
std::optional<BesideFile> ParseAfterInfix(absl::string_view rest) {
  constexpr size_t kTokenDigits = 16;
  if (rest.size() < kTokenDigits + 2 || !AllOf(rest.substr(0, kTokenDigits), IsLowerHex) ||
      rest[kTokenDigits] != '-') {
    return std::nullopt;
  }
  BesideFile file;
  file.token = std::string(rest.substr(0, kTokenDigits));
  rest.remove_prefix(kTokenDigits + 1);
  size_t digits = 0;
  while (digits < rest.size() && IsDigit(rest[digits])) ++digits;
  if (digits == 0 || !absl::SimpleAtoi(rest.substr(0, digits), &file.part) ||
      !ParseKind(rest.substr(digits), &file.is_index, &file.is_shard)) {
    return std::nullopt;
  }
  return file;
}

}  // namespace

std::optional<BesideFile> ParseBesideFile(absl::string_view name) {
  // As layout.py's pattern: the TF name is as long as it can be, so the
  // infix is the last one after which the rest of the name fits.
  for (size_t at = name.rfind(kBesideInfix); at != absl::string_view::npos && at > 0;
       at = name.rfind(kBesideInfix, at - 1)) {
    std::optional<BesideFile> file =
        ParseAfterInfix(name.substr(at + sizeof(kBesideInfix) - 1));
    if (file.has_value()) {
      file->tf_name = std::string(name.substr(0, at));
      return file;
    }
  }
  return std::nullopt;
}

std::optional<std::string> BesideToken(absl::string_view referenced_name) {
  std::optional<BesideFile> file = ParseBesideFile(absl::StrCat(referenced_name, ".index"));
  if (!file.has_value()) return std::nullopt;
  return file->token;
}

std::string TfCheckpointBase(absl::string_view tf_name) {
  const size_t dash = tf_name.rfind('-');
  if (dash == absl::string_view::npos || dash == 0 || !AllOf(tf_name.substr(dash + 1), IsDigit)) {
    return std::string(tf_name);
  }
  return std::string(tf_name.substr(0, dash));
}

std::vector<std::string> PlanBesideSweep(const BesideSweepInputs& inputs) {
  // (TF checkpoint, token) -> its files, committed indexes first.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
  for (const std::string& name : inputs.names) {
    std::optional<BesideFile> file = ParseBesideFile(name);
    if (!file.has_value() || TfCheckpointBase(file->tf_name) != inputs.base) continue;
    std::vector<std::string>& files = groups[{file->tf_name, file->token}];
    if (file->is_index) {
      files.insert(files.begin(), name);
    } else {
      files.push_back(name);
    }
  }
  std::map<std::string, std::optional<std::set<std::string>>> named;
  std::vector<const std::vector<std::string>*> garbage;
  std::vector<std::string> kept_indexes;
  for (const auto& [key, files] : groups) {
    const auto& [tf_name, token] = key;
    if (inputs.protected_tokens.count(token) == 0) {
      auto it = named.find(tf_name);
      if (it == named.end()) it = named.emplace(tf_name, inputs.named_tokens(tf_name)).first;
      if (it->second.has_value() && it->second->count(token) == 0) {
        garbage.push_back(&files);
        continue;
      }
    }
    for (const std::string& name : files) {
      if (ParseBesideFile(name)->is_index) kept_indexes.push_back(name);
    }
  }
  bool unknown = false;
  std::set<std::string> still_read;
  for (const std::string& index : kept_indexes) {
    std::optional<std::vector<std::string>> files =
        inputs.referenced_files(index.substr(0, index.size() - 6));  // Without ".index".
    if (!files.has_value()) {
      unknown = true;
      break;
    }
    still_read.insert(files->begin(), files->end());
  }
  std::vector<std::string> plan;
  for (const std::vector<std::string>* files : garbage) {
    for (const std::string& name : *files) {
      if (ParseBesideFile(name)->is_shard && (unknown || still_read.count(name) > 0)) continue;
      plan.push_back(name);
    }
  }
  return plan;
}

}  // namespace tfdata_checkpoint
