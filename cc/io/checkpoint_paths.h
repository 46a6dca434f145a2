// Names of the files that make up one checkpoint, and filesystem helpers that
// TensorFlow's FileSystem API lacks.
#ifndef TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_PATHS_H_
#define TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_PATHS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

// "<prefix>.index": the file whose presence means the checkpoint exists.
std::string IndexPath(absl::string_view prefix);
// "<prefix>.index.tmp-<nonce>": the index before it is renamed into place.
std::string TempIndexPath(absl::string_view prefix, uint64_t nonce);
// "<basename(prefix)>.data-<nonce>-<shard>-of-<num_shards>".
std::string ShardName(absl::string_view prefix, uint64_t nonce, int64_t shard,
                      int64_t num_shards);
// Directory part of a prefix ("" for a bare name); a URI keeps its scheme.
std::string PrefixDirectory(absl::string_view prefix);
// Joins the prefix's directory and a shard's basename.
std::string ShardPath(absl::string_view prefix, absl::string_view shard_name);

// The key of a directory's background saves: the same for every spelling of
// one directory ("ck", "./ck", "ck/", "<cwd>/ck", "file://<cwd>/ck"), so that
// waiting for a directory waits for the saves into it however their prefixes
// spell it. Local paths are made absolute and cleaned lexically, as
// TensorFlow's filesystem cleans every path it opens; URIs keep their scheme
// and host and have their path cleaned.
std::string BackgroundSaveKey(absl::string_view directory);

// True for plain paths and file:// URIs, where POSIX calls apply.
bool IsLocalPath(absl::string_view path);

// Makes the contents of a closed local file durable (POSIX fsync). TF's
// WritableFile::Sync() only flushes its buffer to the OS for local files, so
// it is not enough. The path is cleaned lexically first, as TensorFlow's
// filesystem did when it wrote the file: "a/missing/../b" and "a/link/../b"
// are "a/b", wherever the kernel would resolve them. A no-op for non-local filesystems, whose Sync()/Close()
// already persist (they upload).
absl::Status SyncLocalFile(absl::string_view path);

// Makes a rename inside `directory` durable (POSIX fsync of the directory).
// A no-op for non-local filesystems, whose renames are durable when they
// return or which have no directories at all.
absl::Status SyncDirectory(absl::string_view directory);

// Adds "<verb> <path>: " in front of a failed status, keeping its code.
absl::Status Annotate(const absl::Status& status, absl::string_view verb,
                      absl::string_view path);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_PATHS_H_
