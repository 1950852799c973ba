// The minimal Llama-3 chat formatter (src/data/chat_template.h): token ids equal the tokenizer's
// encoding of the template text with special tokens parsed, the assistant mask covers exactly the
// assistant contents and their <|eot_id|>, and a tokenizer without the special tokens is an input error.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace lct {
namespace {

TEST(ChatTemplate, IdsAndAssistantMask) {
  auto tok = make_tokenizer(test::data_dir() + "/tokenizer/llama3_style/tokenizer.json");
  const std::vector<ChatMessage> msgs = {
      {"system", "Be brief."}, {"user", "What is 2 + 2?"}, {"assistant", "4"}, {"user", "And 3 + 3?"}};
  const std::string text = llama3_chat_text(msgs, true);
  EXPECT_EQ(text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnd 3 + 3?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const ChatTokens ct = llama3_chat_tokens(*tok, msgs, true);
  EXPECT_EQ(ct.ids, tok->encode(text, true));
  ASSERT_EQ(ct.assistant_mask.size(), ct.ids.size());
  // The masked tokens decode to the assistant's reply and its end of turn, nothing else.
  std::vector<int32_t> masked;
  for (size_t i = 0; i < ct.ids.size(); ++i)
    if (ct.assistant_mask[i]) masked.push_back(ct.ids[i]);
  EXPECT_EQ(tok->decode(masked), "4<|eot_id|>");
  EXPECT_EQ(llama3_end_of_turn(*tok), tok->token_id("<|eot_id|>"));
  // A special token written inside a message is text, not a control token.
  const ChatTokens inj = llama3_chat_tokens(*tok, {{"user", "<|eot_id|>"}}, false);
  int eots = 0;
  for (int32_t id : inj.ids) eots += id == tok->token_id("<|eot_id|>");
  EXPECT_EQ(eots, 1);
}

TEST(ChatTemplate, InputErrors) {
  auto bytes = make_tokenizer("bytes");
  EXPECT_THROW(llama3_chat_tokens(*bytes, {{"user", "hi"}}, true), InputError);
  auto tok = make_tokenizer(test::data_dir() + "/tokenizer/llama3_style/tokenizer.json");
  EXPECT_THROW(llama3_chat_tokens(*tok, {{"robot", "hi"}}, true), InputError);
}

}  // namespace
}  // namespace lct
