// Saves that continue after the op that started them has returned. One save
// at a time per checkpoint directory: a new save waits for the previous one,
// and a failure is handed to the next caller instead of being lost.
#ifndef TFDATA_CHECKPOINT_CC_IO_BACKGROUND_SAVES_H_
#define TFDATA_CHECKPOINT_CC_IO_BACKGROUND_SAVES_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tfdata_checkpoint {

class BackgroundSaves {
 public:
  static BackgroundSaves* Global();

  // Waits for the save running under `key`, then starts `save` in the
  // background. If a previous save under `key` failed, returns that error
  // and does not start `save`.
  absl::Status Start(const std::string& key, const std::string& prefix,
                     std::function<absl::Status()> save);

  // A synchronous save: waits for the save running under `key`, then runs
  // `save` on the calling thread (no other save under `key` starts
  // meanwhile). If a previous save under `key` failed, returns that error
  // and does not run `save`, as Start does.
  absl::Status RunNow(const std::string& key, const std::function<absl::Status()>& save);

  // Waits for the saves under `key` ("" for every key) and moves the prefixes
  // they committed since the last wait into `committed`. Returns the first
  // failure not reported yet.
  absl::Status Wait(const std::string& key, std::vector<std::string>* committed);

 private:
  BackgroundSaves() = default;
  struct Channel;
  Channel* GetChannel(const std::string& key);
  // Joins the running save of `channel`, if any, then returns the failure it
  // has not reported yet (clearing it). Caller holds the channel's caller_mu.
  static absl::Status JoinAndTakeFailure(Channel* channel);

  std::mutex mu_;  // Guards channels_ (not the channels themselves).
  std::map<std::string, std::unique_ptr<Channel>> channels_;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_BACKGROUND_SAVES_H_
