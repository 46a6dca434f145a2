#include "cc/io/background_saves.h"

#include <thread>

namespace tfdata_checkpoint {

struct BackgroundSaves::Channel {
  // Serializes Start/Wait callers of one channel; held while joining.
  std::mutex caller_mu;
  std::thread worker;
  // Written by the worker, read after joining it.
  absl::Status failure;
  std::vector<std::string> committed;
};

BackgroundSaves* BackgroundSaves::Global() {
  // Leaked on purpose, like the threads it may still run at exit.
  static BackgroundSaves* saves = new BackgroundSaves;
  return saves;
}

BackgroundSaves::Channel* BackgroundSaves::GetChannel(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<Channel>& channel = channels_[key];
  if (channel == nullptr) channel = std::make_unique<Channel>();
  return channel.get();
}

absl::Status BackgroundSaves::JoinAndTakeFailure(Channel* channel) {
  if (channel->worker.joinable()) channel->worker.join();
  absl::Status failure = channel->failure;
  channel->failure = absl::OkStatus();
  return failure;
}

absl::Status BackgroundSaves::Start(const std::string& key, const std::string& prefix,
                                    std::function<absl::Status()> save) {
  Channel* channel = GetChannel(key);
  std::lock_guard<std::mutex> lock(channel->caller_mu);
  if (absl::Status failure = JoinAndTakeFailure(channel); !failure.ok()) return failure;
  channel->worker = std::thread([channel, prefix, save = std::move(save)] {
    absl::Status status = save();
    if (status.ok()) {
      channel->committed.push_back(prefix);
    } else {
      channel->failure = absl::Status(
          status.code(), "Background save of " + prefix + " failed: " +
                             std::string(status.message()));
    }
  });
  return absl::OkStatus();
}

absl::Status BackgroundSaves::RunNow(const std::string& key,
                                     const std::function<absl::Status()>& save) {
  Channel* channel = GetChannel(key);
  std::lock_guard<std::mutex> lock(channel->caller_mu);
  if (absl::Status failure = JoinAndTakeFailure(channel); !failure.ok()) return failure;
  return save();
}

absl::Status BackgroundSaves::Wait(const std::string& key,
                                   std::vector<std::string>* committed) {
  std::vector<Channel*> channels;
  if (key.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, channel] : channels_) channels.push_back(channel.get());
  } else {
    channels.push_back(GetChannel(key));
  }
  absl::Status first_failure;
  for (Channel* channel : channels) {
    std::lock_guard<std::mutex> lock(channel->caller_mu);
    absl::Status failure = JoinAndTakeFailure(channel);
    for (std::string& prefix : channel->committed) committed->push_back(std::move(prefix));
    channel->committed.clear();
    if (first_failure.ok()) first_failure = failure;
  }
  return first_failure;
}

}  // namespace tfdata_checkpoint
