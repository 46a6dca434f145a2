// Our files beside TF checkpoints: their names (as layout.py parses them),
// which of them a sweep deletes and in which order, and a sweep of a real
// directory with real TF bundles (scalar and vector references, an unreadable
// bundle, a protected save).
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cc/format/beside_names.h"
#include "cc/io/beside_sweep.h"
#include "cc/tests/check.h"
#include "cc/tests/io_test_util.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/util/tensor_bundle/tensor_bundle.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using testing::TempDir;

constexpr char kA[] = "0123456789abcdef";
constexpr char kB[] = "00000000000000bb";
constexpr char kC[] = "00000000000000cc";

std::string Ours(const std::string& tf_name, const std::string& token, const std::string& kind,
                 int part = 0) {
  return absl::StrCat(tf_name, ".tfdc-", token, "-", part, kind);
}

TFDC_TEST(ParsesOurNamesAsLayoutDoes) {
  std::optional<BesideFile> f = ParseBesideFile(Ours("ckpt-12", kA, ".data-00000000000000ff-00000-of-00004", 2));
  CHECK_TRUE(f.has_value());
  CHECK_TRUE(f->tf_name == "ckpt-12" && f->token == kA && f->part == 2);
  CHECK_TRUE(!f->is_index && f->is_shard);
  f = ParseBesideFile(Ours("ckpt-12", kA, ".index"));
  CHECK_TRUE(f.has_value() && f->is_index && !f->is_shard);
  f = ParseBesideFile(Ours("ckpt-12", kA, ".index.tmp-0000000000000007"));
  CHECK_TRUE(f.has_value() && !f->is_index && !f->is_shard);
  // The TF name may hold the infix itself: the last infix that fits counts.
  f = ParseBesideFile(Ours(Ours("a", kB, ""), kA, ".index"));
  CHECK_TRUE(f.has_value() && f->tf_name == Ours("a", kB, "") && f->token == kA);
  // TF's own files and near misses are not ours.
  for (const char* name : {"ckpt-12.index", "ckpt-12.data-00000-of-00001", "ckpt-12.meta",
                           "checkpoint", ".tfdc-0123456789abcdef-0.index",
                           "c.tfdc-0123456789ABCDEF-0.index", "c.tfdc-0123456789abcde-0.index",
                           "c.tfdc-0123456789abcdef-.index", "c.tfdc-0123456789abcdef-0.indexx",
                           "c.tfdc-0123456789abcdef-0.data-ff-1-of-", "ckpt.tfdc.lock"}) {
    if (ParseBesideFile(name).has_value()) std::printf("  parsed %s\n", name);
    CHECK_TRUE(!ParseBesideFile(name).has_value());
  }
  CHECK_TRUE(BesideToken(Ours("ckpt-3", kA, "")) == std::optional<std::string>(kA));
  CHECK_TRUE(!BesideToken("ckpt-3").has_value());
}

TFDC_TEST(BaseDropsTheNumber) {
  CHECK_TRUE(TfCheckpointBase("ckpt-12") == "ckpt");
  CHECK_TRUE(TfCheckpointBase("model.ckpt-7") == "model.ckpt");
  CHECK_TRUE(TfCheckpointBase("model.ckpt") == "model.ckpt");
  CHECK_TRUE(TfCheckpointBase("a-1-2") == "a-1");
  CHECK_TRUE(TfCheckpointBase("-3") == "-3");
  CHECK_TRUE(TfCheckpointBase("a-") == "a-");
  CHECK_TRUE(TfCheckpointBase("a-x1") == "a-x1");
}

// A directory: TF checkpoints (name -> tokens, nullopt unreadable) and what
// our indexes refer to.
struct Directory {
  std::vector<std::string> names;
  std::map<std::string, std::optional<std::set<std::string>>> tf;
  std::map<std::string, std::optional<std::vector<std::string>>> refs;
  std::vector<std::string> asked_tf;

  std::vector<std::string> Plan(const std::string& base, std::set<std::string> protected_tokens) {
    BesideSweepInputs inputs;
    inputs.names = names;
    inputs.base = base;
    inputs.protected_tokens = std::move(protected_tokens);
    inputs.named_tokens = [this](const std::string& tf_name) {
      asked_tf.push_back(tf_name);
      auto it = tf.find(tf_name);
      return it == tf.end() ? std::optional<std::set<std::string>>(std::set<std::string>())
                            : it->second;
    };
    inputs.referenced_files = [this](const std::string& our_name) {
      auto it = refs.find(our_name);
      return it == refs.end() ? std::optional<std::vector<std::string>>(std::vector<std::string>())
                              : it->second;
    };
    return PlanBesideSweep(inputs);
  }
};

const std::string kShard = ".data-00000000000000aa-00000-of-00001";

TFDC_TEST(PlanDeletesUnnamedSavesIndexFirst) {
  Directory d;
  d.names = {Ours("ckpt-1", kA, kShard), Ours("ckpt-1", kA, ".index"),   // TF ckpt-1 is gone
             Ours("ckpt-2", kB, kShard), Ours("ckpt-2", kB, ".index"),   // named
             Ours("ckpt-2", kA, kShard), Ours("ckpt-2", kA, ".index.tmp-01"),  // replaced
             Ours("ckpt-3", kC, kShard),                                 // in flight
             Ours("other-1", kA, ".index"),                               // another base
             "ckpt-2.index", "ckpt-2.data-00000-of-00001", "checkpoint"};
  d.tf["ckpt-2"] = std::set<std::string>{kB};
  const std::vector<std::string> plan = d.Plan("ckpt", {kC});
  const std::vector<std::string> want = {Ours("ckpt-1", kA, ".index"), Ours("ckpt-1", kA, kShard),
                                         Ours("ckpt-2", kA, kShard),
                                         Ours("ckpt-2", kA, ".index.tmp-01")};
  CHECK_TRUE(plan == want);
  // Each TF checkpoint is read once; the protected one's not at all.
  CHECK_TRUE(d.asked_tf == (std::vector<std::string>{"ckpt-1", "ckpt-2"}));
}

TFDC_TEST(PlanKeepsShardsAKeptIndexRefersTo) {
  Directory d;
  const std::string old_shard = Ours("ckpt-1", kA, kShard);
  const std::string other_shard = Ours("ckpt-1", kA, ".data-00000000000000ab-00000-of-00001");
  d.names = {old_shard, other_shard, Ours("ckpt-1", kA, ".index"),
             Ours("ckpt-2", kB, ".index"), Ours("ckpt-2", kB, kShard)};
  d.tf["ckpt-2"] = std::set<std::string>{kB};
  d.refs[Ours("ckpt-2", kB, "")] = std::vector<std::string>{old_shard};
  CHECK_TRUE(d.Plan("ckpt", {}) ==
             (std::vector<std::string>{Ours("ckpt-1", kA, ".index"), other_shard}));
  // Unknown references keep every shard; indexes still go.
  d.refs[Ours("ckpt-2", kB, "")] = std::nullopt;
  CHECK_TRUE(d.Plan("ckpt", {}) == (std::vector<std::string>{Ours("ckpt-1", kA, ".index")}));
  // A protected save's index counts as kept.
  d.tf.erase("ckpt-2");
  d.refs[Ours("ckpt-2", kB, "")] = std::vector<std::string>{other_shard};
  CHECK_TRUE(d.Plan("ckpt", {kB}) ==
             (std::vector<std::string>{Ours("ckpt-1", kA, ".index"), old_shard}));
}

TFDC_TEST(PlanLeavesUnreadableTfCheckpoints) {
  Directory d;
  d.names = {Ours("ckpt-1", kA, ".index"), Ours("ckpt-1", kA, kShard)};
  d.tf["ckpt-1"] = std::nullopt;
  CHECK_TRUE(d.Plan("ckpt", {}).empty());
}

void WriteFile(const std::string& path, const std::string& data) {
  CHECK_TRUE(tensorflow::WriteStringToFile(Env::Default(), path, data).ok());
}

void WriteBundle(const std::string& prefix, const std::vector<std::string>& names, bool vector) {
  tensorflow::BundleWriter writer(Env::Default(), prefix);
  Tensor step(tensorflow::DT_INT64, TensorShape({}));
  step.scalar<int64_t>()() = 3;
  CHECK_TRUE(writer.Add("global_step", step).ok());
  Tensor refs(tensorflow::DT_STRING,
              vector ? TensorShape({static_cast<int64_t>(names.size())}) : TensorShape({}));
  for (size_t i = 0; i < names.size(); ++i) refs.flat<tensorflow::tstring>()(i) = names[i];
  CHECK_TRUE(writer.Add(absl::StrCat("it", kReferenceKeySuffix), refs).ok());
  CHECK_TRUE(writer.Finish().ok());
}

bool Exists(const std::string& path) { return Env::Default()->FileExists(path).ok(); }

TFDC_TEST(SweepsARealDirectory) {
  TempDir dir;
  const std::string d = dir.path() + "/";
  WriteBundle(d + "ckpt-2", {Ours("ckpt-2", kB, "")}, /*vector=*/false);
  WriteBundle(d + "ckpt-3", {Ours("ckpt-3", kA, "", 0), Ours("ckpt-3", kA, "", 1)},
              /*vector=*/true);
  WriteFile(d + "ckpt-4.index", "not a bundle");
  const std::vector<std::string> files = {
      Ours("ckpt-1", kA, ".index"), Ours("ckpt-1", kA, kShard),  // deleted TF checkpoint
      Ours("ckpt-2", kB, ".index"), Ours("ckpt-2", kB, kShard),  // named (scalar)
      Ours("ckpt-2", kC, kShard),                                // killed rewrite
      Ours("ckpt-3", kA, ".index", 0), Ours("ckpt-3", kA, ".index", 1),  // named (vector)
      Ours("ckpt-4", kA, ".index"),                              // unreadable TF checkpoint
      Ours("ckpt-5", kC, kShard)};                               // in flight
  for (const std::string& name : files) WriteFile(d + name, "x");
  std::vector<std::string> removed;
  // The kept indexes are not real ones: what they refer to is unknown, so
  // only indexes and temporary indexes may go.
  SweepBesideCheckpoints(d + "ckpt", {kC}, &removed);
  CHECK_TRUE(removed == (std::vector<std::string>{d + Ours("ckpt-1", kA, ".index")}));
  for (const std::string& name : files) {
    CHECK_TRUE(Exists(d + name) == (name != Ours("ckpt-1", kA, ".index")));
  }
  // Without unreadable indexes of ours kept, the shards go too.
  for (const std::string& name : {Ours("ckpt-2", kB, ".index"), Ours("ckpt-3", kA, ".index", 0),
                                  Ours("ckpt-3", kA, ".index", 1), Ours("ckpt-4", kA, ".index")}) {
    CHECK_TRUE(Env::Default()->DeleteFile(d + name).ok());
  }
  SweepBesideCheckpoints(d + "ckpt-9", {}, &removed);
  CHECK_TRUE(removed == (std::vector<std::string>{d + Ours("ckpt-1", kA, kShard),
                                                  d + Ours("ckpt-2", kC, kShard),
                                                  d + Ours("ckpt-5", kC, kShard)}));
  CHECK_TRUE(Exists(d + Ours("ckpt-2", kB, kShard)));  // ckpt-2 still names kB
  CHECK_TRUE(Exists(d + "ckpt-2.index") && Exists(d + "ckpt-4.index"));
  // A directory that does not exist has nothing to sweep.
  SweepBesideCheckpoints(d + "missing/ckpt-1", {}, &removed);
  CHECK_TRUE(removed.empty());
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
