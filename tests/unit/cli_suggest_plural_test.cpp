// SPDX-License-Identifier: Apache-2.0
// The CLI's word helpers: "did you mean" matching (cli/suggest.h: edit distance, prefixes,
// ties) and English plurals for summary counts (cli/plural.h), against hand-computed answers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/plural.h"
#include "cli/suggest.h"

namespace cvdeploy::cli {
namespace {

TEST(EditDistanceTest, HandComputedDistances) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("", "ab"), 2u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("predcit", "predict"), 2u);  // a transposition is two edits
  EXPECT_EQ(EditDistance("modle", "model"), 2u);
  EXPECT_EQ(EditDistance("persn", "person"), 1u);
  EXPECT_EQ(EditDistance("Predict", "predict"), 0u);  // ASCII case is ignored
  EXPECT_EQ(EditDistance("flaw", "lawn"), 2u);
}

TEST(SuggestTest, ClosestWithinTwoEdits) {
  const std::vector<std::string> commands = {"info", "predict", "validate", "bench", "serve"};
  EXPECT_EQ(Suggest("predcit", commands), std::vector<std::string>{"predict"});
  EXPECT_EQ(Suggest("valdate", commands), std::vector<std::string>{"validate"});
  EXPECT_EQ(Suggest("serv", commands), std::vector<std::string>{"serve"});
  EXPECT_TRUE(Suggest("frobnicate", commands).empty());
  EXPECT_TRUE(Suggest("", commands).empty());
}

TEST(SuggestTest, ShortWordsDoNotMatchEverything) {
  // Two edits turn "x" into any word of up to 3 letters; a match must be closer than that.
  EXPECT_TRUE(Suggest("x", {"iou", "cpu", "ab"}).empty());
  EXPECT_EQ(Suggest("io", {"iou", "cpu"}), std::vector<std::string>{"iou"});
}

TEST(SuggestTest, PrefixesAndTies) {
  const std::vector<std::string> flags = {"max-det", "max-pixels", "model", "conf"};
  // "max" is a prefix of two flags, both within no edit distance: both, in candidate order.
  EXPECT_EQ(Suggest("max", flags), (std::vector<std::string>{"max-det", "max-pixels"}));
  // A longer word that starts with a candidate ("conf-thres", Ultralytics' old name).
  EXPECT_EQ(Suggest("conf-thres", flags), std::vector<std::string>{"conf"});
  // Distance beats prefix: "mode" is one edit from "model".
  EXPECT_EQ(Suggest("mode", flags), std::vector<std::string>{"model"});
  // At most `max`, duplicates once.
  EXPECT_EQ(Suggest("ab", {"abc", "abd", "abe", "abf", "abc"}, 2),
            (std::vector<std::string>{"abc", "abd"}));
}

TEST(SuggestTest, DidYouMeanAndAlternatives) {
  EXPECT_EQ(DidYouMean("persn", {"person", "bus"}), " (did you mean 'person'?)");
  EXPECT_EQ(DidYouMean("zebra", {"person", "bus"}), "");
  EXPECT_EQ(JoinAlternatives({"a"}, ""), "a");
  EXPECT_EQ(JoinAlternatives({"a", "b"}), "'a' or 'b'");
  EXPECT_EQ(JoinAlternatives({"--a", "--b", "--c"}, ""), "--a, --b or --c");
}

TEST(PluralTest, EnglishRules) {
  EXPECT_EQ(Plural("person"), "persons");  // as Ultralytics prints it
  EXPECT_EQ(Plural("car"), "cars");
  EXPECT_EQ(Plural("bus"), "buses");
  EXPECT_EQ(Plural("box"), "boxes");
  EXPECT_EQ(Plural("bench"), "benches");
  EXPECT_EQ(Plural("toothbrush"), "toothbrushes");
  EXPECT_EQ(Plural("pony"), "ponies");
  EXPECT_EQ(Plural("boy"), "boys");  // y after a vowel
  EXPECT_EQ(Plural("traffic light"), "traffic lights");
  EXPECT_EQ(Plural("wine glass"), "wine glasses");
  EXPECT_EQ(Plural("teddy bear"), "teddy bears");
}

TEST(PluralTest, IrregularAndInvariantNouns) {
  EXPECT_EQ(Plural("skis"), "skis");
  EXPECT_EQ(Plural("scissors"), "scissors");
  EXPECT_EQ(Plural("sheep"), "sheep");
  EXPECT_EQ(Plural("mouse"), "mice");
  EXPECT_EQ(Plural("Mouse"), "Mice");
  EXPECT_EQ(Plural("knife"), "knives");
  EXPECT_EQ(Plural("butter knife"), "butter knives");
  EXPECT_EQ(Plural(""), "");
}

TEST(PluralTest, CountOf) {
  EXPECT_EQ(CountOf(1, "person"), "1 person");
  EXPECT_EQ(CountOf(4, "person"), "4 persons");
  EXPECT_EQ(CountOf(0, "bus"), "0 buses");
  EXPECT_EQ(CountOf(2, "traffic light"), "2 traffic lights");
}

}  // namespace
}  // namespace cvdeploy::cli
