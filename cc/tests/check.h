// A minimal test harness: the C++ tests run where no googletest is installed.
#ifndef TFDATA_CHECKPOINT_CC_TESTS_CHECK_H_
#define TFDATA_CHECKPOINT_CC_TESTS_CHECK_H_

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace tfdata_checkpoint::testing {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}
inline int& Failures() {
  static int failures = 0;
  return failures;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { Registry().push_back({name, fn}); }
};

inline int RunAll() {
  int failed_tests = 0;
  for (const TestCase& test : Registry()) {
    const int before = Failures();
    test.fn();
    const bool ok = Failures() == before;
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", test.name);
    if (!ok) ++failed_tests;
  }
  std::printf("%d passed, %d failed\n",
              static_cast<int>(Registry().size()) - failed_tests, failed_tests);
  return failed_tests == 0 ? 0 : 1;
}

}  // namespace tfdata_checkpoint::testing

#define TFDC_TEST(name)                                                        \
  static void name();                                                          \
  static ::tfdata_checkpoint::testing::Register name##_registration(#name, name); \
  static void name()

#define CHECK_TRUE(cond)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::printf("  %s:%d: CHECK_TRUE(%s) failed\n", __FILE__, __LINE__, #cond); \
      ++::tfdata_checkpoint::testing::Failures();                             \
    }                                                                         \
  } while (0)

#define CHECK_EQ_VAL(a, b)                                                          \
  do {                                                                              \
    const auto va = (a);                                                            \
    const auto vb = (b);                                                            \
    if (!(va == vb)) {                                                              \
      std::printf("  %s:%d: CHECK_EQ_VAL(%s, %s) failed: %s vs %s\n", __FILE__, __LINE__, #a, \
                  #b, std::to_string(va).c_str(), std::to_string(vb).c_str());      \
      ++::tfdata_checkpoint::testing::Failures();                                   \
    }                                                                               \
  } while (0)

#define TFDC_TEST_MAIN() \
  int main() { return ::tfdata_checkpoint::testing::RunAll(); }

#endif  // TFDATA_CHECKPOINT_CC_TESTS_CHECK_H_
