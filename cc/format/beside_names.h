// Our checkpoints beside a TensorFlow checkpoint (TrackableIterator,
// make_saveable_from_iterator), by name only: which files they are, and which
// of them a sweep deletes. python/tfdata_checkpoint/_src/layout.py holds the
// same names ("beside a TensorFlow checkpoint"); tests/test_saveable.py and
// cc/tests/beside_sweep_test.cc hold the two together.
//
// For a TF checkpoint `<name>` the input state of iterator `<part>` saved by
// the save `<token>` (16 hex digits) is our checkpoint
// `<name>.tfdc-<token>-<part>`: its `.index`, `.index.tmp-<nonce>` and
// `.data-<nonce>-<shard>-of-<shards>` files. TF's bundle of `<name>` holds
// the name `<name>.tfdc-<token>-<part>` under a reference key.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_BESIDE_NAMES_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_BESIDE_NAMES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

inline constexpr char kBesideInfix[] = ".tfdc-";
// A TF bundle key ending in this holds references to our checkpoints: a
// DT_STRING scalar, or a vector of names (one per replica).
inline constexpr char kReferenceKeySuffix[] = "/.ATTRIBUTES/TFDC_INPUT_CHECKPOINT";

struct BesideFile {
  std::string tf_name;  // `<name>`, the TF checkpoint's file name.
  std::string token;
  int64_t part = 0;
  bool is_index = false;  // `.index` (committed), not a temporary index or shard.
  bool is_shard = false;  // `.data-*`.
};

// The parts of one of our file names beside a TF checkpoint; nullopt for any
// other name (TF's own files included).
std::optional<BesideFile> ParseBesideFile(absl::string_view name);

// The token of a referenced name `<name>.tfdc-<token>-<part>`, or nullopt.
std::optional<std::string> BesideToken(absl::string_view referenced_name);

// The name of a TF checkpoint without its number: "ckpt" for "ckpt-3",
// "model.ckpt" for "model.ckpt".
std::string TfCheckpointBase(absl::string_view tf_name);

// What a sweep needs to know about the directory, asked once per name.
struct BesideSweepInputs {
  // Every file name in the directory.
  std::vector<std::string> names;
  // Only our files beside TF checkpoints of this base are looked at.
  std::string base;
  // Tokens of saves in flight: never touched.
  std::set<std::string> protected_tokens;
  // Tokens that the TF checkpoint `tf_name` names (empty if it does not
  // exist); nullopt if its bundle cannot be read.
  std::function<std::optional<std::set<std::string>>(const std::string& tf_name)> named_tokens;
  // Basenames of the shard files of other checkpoints that our checkpoint
  // `our_name` (e.g. "ckpt-3.tfdc-<token>-0") refers to; nullopt if its index
  // cannot be read.
  std::function<std::optional<std::vector<std::string>>(const std::string& our_name)>
      referenced_files;
};

// The garbage among our files of TF checkpoints of `base`, in the order to
// delete them. A save's files (one TF checkpoint, one token) are garbage when
// the token is not protected and the TF checkpoint does not name it (it is
// gone, or names another save); a TF checkpoint that cannot be read keeps
// them. Each group's committed indexes come first, so that a deletion cut
// short never leaves something that looks whole. Shard files that a kept
// index refers to are not garbage; when what a kept index refers to is
// unknown, no shard file is (indexes and temporary indexes still are).
std::vector<std::string> PlanBesideSweep(const BesideSweepInputs& inputs);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_BESIDE_NAMES_H_
