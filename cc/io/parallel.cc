#include "cc/io/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "tensorflow/core/platform/cpu_info.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/threadpool.h"

namespace tfdata_checkpoint {
namespace {

tensorflow::thread::ThreadPool* IoPool() {
  // Leaked on purpose: destroying it at exit would race with TF's own
  // static destruction.
  static tensorflow::thread::ThreadPool* pool = new tensorflow::thread::ThreadPool(
      tensorflow::Env::Default(), "tfdata_checkpoint_io", IoThreadCount());
  return pool;
}

}  // namespace

int IoThreadCount() {
  return std::clamp(2 * tensorflow::port::MaxParallelism(), 4, 32);
}

void RunInParallel(size_t num_tasks, const std::function<void(size_t)>& fn) {
  if (num_tasks == 0) return;
  struct Shared {
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::condition_variable done_cv;
    size_t workers_left = 0;
  };
  auto shared = std::make_shared<Shared>();
  auto work = [shared, num_tasks, &fn] {
    for (size_t i = shared->next++; i < num_tasks; i = shared->next++) fn(i);
  };
  const size_t helpers =
      std::min<size_t>(num_tasks, static_cast<size_t>(IoThreadCount())) - 1;
  shared->workers_left = helpers;
  for (size_t h = 0; h < helpers; ++h) {
    IoPool()->Schedule([shared, work] {
      work();
      std::lock_guard<std::mutex> lock(shared->mu);
      if (--shared->workers_left == 0) shared->done_cv.notify_all();
    });
  }
  work();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->done_cv.wait(lock, [&] { return shared->workers_left == 0; });
}

}  // namespace tfdata_checkpoint
