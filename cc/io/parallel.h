// Runs independent IO tasks on a process-wide pool sized for IO rather than
// for compute: threads mostly wait on the filesystem.
#ifndef TFDATA_CHECKPOINT_CC_IO_PARALLEL_H_
#define TFDATA_CHECKPOINT_CC_IO_PARALLEL_H_

#include <cstddef>
#include <functional>

namespace tfdata_checkpoint {

// Number of threads in the IO pool.
int IoThreadCount();

// Calls fn(0) ... fn(num_tasks - 1), in parallel on the IO pool and on the
// calling thread, and returns when all have returned. Must not be called from
// inside such a task.
void RunInParallel(size_t num_tasks, const std::function<void(size_t)>& fn);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_PARALLEL_H_
