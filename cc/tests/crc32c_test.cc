#include "cc/format/crc32c.h"

#include <random>
#include <string>

#include "absl/crc/crc32c.h"
#include "cc/tests/check.h"

namespace tfdata_checkpoint {
namespace {

uint32_t Reference(uint32_t crc, absl::string_view data) {
  return static_cast<uint32_t>(absl::ExtendCrc32c(absl::crc32c_t{crc}, data));
}

TFDC_TEST(KnownVector) { CHECK_EQ_VAL(Crc32c("123456789"), uint32_t{0xE3069283}); }

TFDC_TEST(MatchesAbslForEverySizeAndAlignment) {
  std::mt19937_64 rng(3);
  std::string data(70000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  std::string copy(data.size(), '\0');
  for (size_t n : {0, 1, 7, 8, 9, 63, 2047, 2048, 2049, 2055, 4096, 4100, 12287, 12288, 12289,
                   40000, 69990}) {
    for (size_t offset = 0; offset < 8; ++offset) {
      const absl::string_view piece(data.data() + offset, n);
      CHECK_EQ_VAL(Crc32cExtend(0x1234567, piece), Reference(0x1234567, piece));
      // Copying while checksumming, to an unaligned destination.
      CHECK_EQ_VAL(Crc32cCopy(copy.data() + 3, piece, 0x1234567), Reference(0x1234567, piece));
      CHECK_TRUE(absl::string_view(copy.data() + 3, n) == piece);
    }
  }
}

TFDC_TEST(ConcatAndCopyAgreeWithOnePass) {
  std::mt19937_64 rng(5);
  std::string data(50000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const absl::string_view all(data);
  for (size_t cut : {0, 1, 100, 25000, 49999, 50000}) {
    const uint32_t a = Crc32c(all.substr(0, cut));
    const uint32_t b = Crc32c(all.substr(cut));
    CHECK_EQ_VAL(Crc32cConcat(a, b, data.size() - cut), Crc32c(all));
  }
  std::string copy(data.size(), '\0');
  CHECK_EQ_VAL(Crc32cCopy(copy.data(), all), Crc32c(all));
  CHECK_TRUE(copy == data);
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
