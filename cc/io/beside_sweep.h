// Deleting our files beside TF checkpoints once they belong to no TF
// checkpoint: the one implementation behind both routes (TrackableIterator's
// saves call it from Python, make_saveable_from_iterator's Saver saves as the
// op SweepBesideCheckpoints before each SaveIterator).
//
// TF deletes its own files only (a Saver's max_to_keep and
// tf.train.CheckpointManager remove `<name>.index`, `<name>.data-*`, and a
// Saver `<name>.meta`), so ours are removed here: the files of the save
// `<token>` of the TF checkpoint `<name>` are garbage when `<name>.index` is
// gone (deleted, or the save never got that far) or its bundle does not name
// `<token>` (a later save of the same name replaced it, or this one was killed
// while rewriting it), unless the token is protected (a save in flight).
// PlanBesideSweep (cc/format/beside_names.h) decides; this reads the
// directory, TF's bundles and our indexes, and deletes.
#ifndef TFDATA_CHECKPOINT_CC_IO_BESIDE_SWEEP_H_
#define TFDATA_CHECKPOINT_CC_IO_BESIDE_SWEEP_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tfdata_checkpoint {

// Tokens of our saves that the TF checkpoint `tf_prefix` names (its bundle's
// reference tensors: DT_STRING scalars or vectors). Empty when `tf_prefix` has
// no index; an error when its bundle cannot be read.
absl::Status NamedBesideTokens(const std::string& tf_prefix, std::set<std::string>* tokens);

// The shard files of other checkpoints that our checkpoint `prefix` refers to
// (basenames, as `referenced_files` of DescribeIteratorShards). Empty when it
// has no index. What an index refers to is remembered, process-wide, by the
// index's path, size and modification time: a committed index never changes,
// and one can be tens of MB.
absl::Status ReferencedFilesOf(const std::string& prefix, std::vector<std::string>* files);

// Removes the garbage among our files beside the TF checkpoints in the
// directory of `tf_prefix` that have its base (`ckpt` for `ckpt-<n>`;
// `tf_prefix` itself need not exist). Never fails for what it finds: a TF
// checkpoint whose bundle cannot be read keeps its files, an index of ours
// that cannot be read keeps every shard file, a file that cannot be deleted is
// skipped (with the rest of its save if it was an index); each is logged.
// `*removed` gets the paths removed, in order; each is logged too.
void SweepBesideCheckpoints(const std::string& tf_prefix,
                            const std::set<std::string>& protected_tokens,
                            std::vector<std::string>* removed);

// Remembers a sweep for SweepRememberedAgain: the last one of each directory
// and base, with its protected tokens.
void RememberSweep(const std::string& tf_prefix, const std::set<std::string>& protected_tokens);

// Runs every remembered sweep again (a TF1 Saver deletes its oldest
// checkpoint after its save op, so ours of the one deleted at a job's last
// save are garbage only then: at exit). `*removed` gets the paths removed.
void SweepRememberedAgain(std::vector<std::string>* removed);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_BESIDE_SWEEP_H_
