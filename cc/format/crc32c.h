// CRC32C (Castagnoli) for every checksum of the format. TensorFlow's wheels
// build absl's CRC32C without its hardware path, which made checksums the
// largest cost of a save; this uses the SSE4.2 instruction when the CPU has it
// and absl's portable code otherwise. Values are standard CRC32C either way.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_CRC32C_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

// CRC32C of `data` appended to bytes whose CRC32C is `crc` (0 for none).
uint32_t Crc32cExtend(uint32_t crc, absl::string_view data);

inline uint32_t Crc32c(absl::string_view data) { return Crc32cExtend(0, data); }

// CRC32C of A followed by B, from CRC32C(A), CRC32C(B) and B's length.
uint32_t Crc32cConcat(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);

// Copies `src` to `dst` and returns CRC32C(src) extended onto `crc`.
uint32_t Crc32cCopy(char* dst, absl::string_view src, uint32_t crc = 0);

// Whether the hardware path is in use (for tests and benchmarks).
bool Crc32cIsAccelerated();

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_CRC32C_H_
