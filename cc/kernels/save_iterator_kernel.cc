// SaveIterator: captures an iterator's state through its own Save, with our
// StateWriter (no SerializeIterator, no variant per entry), then writes it as
// sharded files, now or in the background.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cc/kernels/iterator_resource.h"
#include "cc/kernels/save_kernel_common.h"
#include "cc/state/element_spec.h"
#include "cc/state/state_writer.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class SaveIteratorOp : public OpKernel {
 public:
  explicit SaveIteratorOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    int64_t policy = 0;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("external_state_policy", &policy));
    OP_REQUIRES(ctx, policy >= 0 && policy <= 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "external_state_policy must be 0 (warn), 1 (ignore) or 2 (fail), got ",
                    policy)));
    policy_ = static_cast<tensorflow::data::ExternalStatePolicy>(policy);
    OP_REQUIRES_OK(ctx, ReadSaveAttrs(ctx, &attrs_));
  }

  void Compute(OpKernelContext* ctx) override {
    IteratorAndPrefix in;
    OP_REQUIRES_OK(ctx, ReadIteratorAndPrefix(ctx, &in));

    auto captured = std::make_shared<CapturedState>();
    {
      StateWriter writer(captured.get());
      OP_REQUIRES_OK(ctx, ExplainExternalState(in.iterator->Save(ctx, policy_, &writer)));
    }
    captured->element_spec() =
        ElementSpecOf(in.iterator->output_dtypes(), in.iterator->output_shapes());
    WriteCapturedState(ctx, std::move(captured), in.prefix, attrs_);
  }

 private:
  // TF says only "EagerPyFunc is stateful": say what the policy is about and
  // what choosing another one gives up.
  absl::Status ExplainExternalState(const absl::Status& status) const {
    if (status.ok() || !absl::IsFailedPrecondition(status) ||
        policy_ != tensorflow::data::ExternalStatePolicy::POLICY_FAIL) {
      return status;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        status.message(),
        " The input pipeline depends on state outside it (a tf.py_function or "
        "tf.numpy_function, or another stateful op such as a random op without a seed), which "
        "an iterator checkpoint cannot hold, and external_state_policy is 'fail'. With "
        "external_state_policy='warn' (logs a warning) or 'ignore' the checkpoint is saved "
        "without it: the positions and the buffered elements are saved, but not what such a "
        "function keeps for itself (Python variables, its own random generator, files it "
        "reads); after a restore it goes on from whatever that state is then, so the elements "
        "it makes may differ from those of an uninterrupted run."));
  }

  tensorflow::data::ExternalStatePolicy policy_;
  SaveAttrs attrs_;
};

REGISTER_KERNEL_BUILDER(Name("SaveIterator").Device(tensorflow::DEVICE_CPU), SaveIteratorOp);

}  // namespace
}  // namespace tfdata_checkpoint
