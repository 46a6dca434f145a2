// A JSON description of an index, for tools (inspect, verify) that should not
// have to parse the binary format themselves.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_INDEX_SUMMARY_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_INDEX_SUMMARY_H_

#include <string>

#include "cc/format/checkpoint_index.h"

namespace tfdata_checkpoint {

std::string IndexSummaryJson(const CheckpointIndex& index);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_INDEX_SUMMARY_H_
