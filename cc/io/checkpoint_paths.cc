#include "cc/io/checkpoint_paths.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tensorflow/core/platform/path.h"

namespace tfdata_checkpoint {
namespace {

absl::string_view Basename(absl::string_view prefix) {
  const size_t slash = prefix.rfind('/');
  return slash == absl::string_view::npos ? prefix : prefix.substr(slash + 1);
}

}  // namespace

std::string IndexPath(absl::string_view prefix) {
  return absl::StrCat(prefix, ".index");
}

std::string TempIndexPath(absl::string_view prefix, uint64_t nonce) {
  return absl::StrFormat("%s.index.tmp-%016x", prefix, nonce);
}

std::string ShardName(absl::string_view prefix, uint64_t nonce, int64_t shard,
                      int64_t num_shards) {
  return absl::StrFormat("%s.data-%016x-%05d-of-%05d", Basename(prefix), nonce,
                         shard, num_shards);
}

std::string PrefixDirectory(absl::string_view prefix) {
  const size_t slash = prefix.rfind('/');
  if (slash == absl::string_view::npos) return "";
  if (slash == 0) return "/";
  // Keep "scheme://" whole when the prefix sits at the root of a URI.
  if (slash >= 2 && prefix.substr(slash - 2, 3) == "://") {
    return std::string(prefix.substr(0, slash + 1));
  }
  return std::string(prefix.substr(0, slash));
}

std::string ShardPath(absl::string_view prefix, absl::string_view shard_name) {
  const size_t slash = prefix.rfind('/');
  if (slash == absl::string_view::npos) return std::string(shard_name);
  return absl::StrCat(prefix.substr(0, slash + 1), shard_name);
}

bool IsLocalPath(absl::string_view path) {
  return absl::StartsWith(path, "file://") ||
         path.find("://") == absl::string_view::npos;
}

namespace {

// What TensorFlow's local filesystem opens for `path` (its TranslateName):
// "file://" dropped, the rest cleaned lexically. POSIX calls must use the same
// path, or they reach another file than the one TF wrote, or none.
std::string LocalPath(absl::string_view path) {
  std::string local(path);
  if (absl::StartsWith(local, "file://")) local = local.substr(7);
  return local.empty() ? "." : tensorflow::io::CleanPath(local);
}

}  // namespace

std::string BackgroundSaveKey(absl::string_view directory) {
  if (IsLocalPath(directory)) {
    std::string local(directory);
    if (absl::StartsWith(local, "file://")) local = local.substr(7);
    if (local.empty() || local[0] != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof(cwd)) != nullptr) {
        local = tensorflow::io::JoinPath(cwd, local);
      }
    }
    return tensorflow::io::CleanPath(local);
  }
  absl::string_view scheme, host, path;
  tensorflow::io::ParseURI(directory, &scheme, &host, &path);
  return tensorflow::io::CreateURI(scheme, host,
                                   path.empty() ? "/" : tensorflow::io::CleanPath(path));
}

namespace {

// fsync()s `path`, opened with `flags`. `tolerated` errno values (a
// filesystem that cannot sync this kind of file) count as success.
absl::Status FsyncPath(const std::string& path, int flags, absl::string_view what,
                       std::initializer_list<int> tolerated) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("opening ", what, " ", path, " to sync it: ", std::strerror(errno)));
  }
  const int rc = ::fsync(fd);
  const int saved_errno = errno;
  ::close(fd);
  if (rc != 0 && std::find(tolerated.begin(), tolerated.end(), saved_errno) == tolerated.end()) {
    // EIO here means written data may be lost: the save must fail.
    return absl::DataLossError(
        absl::StrCat("syncing ", what, " ", path, ": ", std::strerror(saved_errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncLocalFile(absl::string_view path) {
  if (!IsLocalPath(path)) return absl::OkStatus();
  return FsyncPath(LocalPath(path), O_RDONLY, "file", {EINVAL, EROFS});
}

absl::Status SyncDirectory(absl::string_view directory) {
  if (!IsLocalPath(directory)) return absl::OkStatus();
  // Some filesystems refuse fsync on directories; their renames are as
  // durable as they get.
  return FsyncPath(LocalPath(directory), O_RDONLY | O_DIRECTORY, "directory",
                   {EINVAL, EROFS});
}

absl::Status Annotate(const absl::Status& status, absl::string_view verb,
                      absl::string_view path) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(verb, " ", path, ": ", status.message()));
}

}  // namespace tfdata_checkpoint
