// The Llama-3 chat template (data/chat_template.h): the tokens are the rendered conversation's,
// the loss mask covers exactly the assistant turns and their <|eot_id|>, the generation prompt,
// and the bad inputs. tests/reader/test_chat_template_hf.sh checks the same against transformers'
// apply_chat_template.
#include <gtest/gtest.h>

#include "data/chat_template.h"
#include "data_test_util.h"

namespace lct::test {
namespace {

std::unique_ptr<Tokenizer> llama3_tok() { return make_tokenizer(data_dir() + "/tokenizer/llama3_style/tokenizer.json"); }

TEST(ChatTemplate, Llama3TokensAreTheRenderedConversation) {
  auto tok = llama3_tok();
  auto t = make_chat_template("llama3", *tok);
  const std::vector<ChatMessage> chat = {
      {"system", "You answer in one word."}, {"user", "  Colour of the sky?\n"}, {"assistant", " Blue. "},
      {"user", "And grass?"}, {"assistant", "Green."}};
  const ChatTokens c = t->render(chat, false);
  const std::string text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer in one word.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nColour of the sky?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nBlue.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nAnd grass?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nGreen.<|eot_id|>";
  EXPECT_EQ(c.tokens, tok->encode(text, true));
  ASSERT_EQ(c.loss_mask.size(), c.tokens.size());
  std::vector<int32_t> trained;
  for (size_t i = 0; i < c.tokens.size(); ++i)
    if (c.loss_mask[i]) trained.push_back(c.tokens[i]);
  EXPECT_EQ(tok->decode(trained), "Blue.<|eot_id|>Green.<|eot_id|>");
  EXPECT_EQ(t->bos_id(), tok->token_id("<|begin_of_text|>"));
}

TEST(ChatTemplate, GenerationPromptEndsWithTheAssistantHeader) {
  auto tok = llama3_tok();
  auto t = make_chat_template("llama3", *tok);
  const ChatTokens c = t->render({{"user", "Hi"}}, true);
  EXPECT_EQ(tok->decode(c.tokens),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  for (uint8_t m : c.loss_mask) EXPECT_EQ(m, 0);
}

TEST(ChatTemplate, BadInputs) {
  auto bytes = make_tokenizer("bytes");
  expect_input_error([&] { make_chat_template("llama3", *bytes); }, {"<|start_header_id|>", "tools/chat_template.py"});
  auto tok = llama3_tok();
  expect_input_error([&] { make_chat_template("chatml", *tok); }, {"'chatml'", "tools/chat_template.py"});
  expect_input_error([] { parse_chat_json("{\"messages\": [", "in.jsonl:3"); }, {"in.jsonl:3", "not a JSON object"});
  expect_input_error([] { parse_chat_json("{\"turns\": []}", "in.jsonl:4"); }, {"in.jsonl:4", "messages"});
  expect_input_error([] { parse_chat_json("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "x:1"); },
                     {"x:1", "message 1", "content"});
}

}  // namespace
}  // namespace lct::test
