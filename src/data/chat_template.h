// The Llama-3 chat format, written once (messages -> text -> token ids, with the assistant mask):
//   <|begin_of_text|><|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> ... and, to ask
//   for a reply, <|start_header_id|>assistant<|end_header_id|>\n\n at the end.
// NOTE: a minimal formatter for `lctrain --generate` (issue 20). Issue 18 brings the project's one
// chat-template implementation to src/data/ (lcdata chat JSONL); the two must become one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lct {

class Tokenizer;

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> assistant_mask;  // 1 on the tokens of assistant contents and their <|eot_id|>
};

// The template's text; add_generation_prompt appends the assistant header.
std::string llama3_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt);
// The same as token ids (contents are tokenized as plain text: a special token written in a
// message is not a control token). InputError when the tokenizer lacks Llama-3's special tokens
// or a role is unknown.
ChatTokens llama3_chat_tokens(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                              bool add_generation_prompt);
// The id that ends an assistant turn (<|eot_id|>); InputError when the tokenizer lacks it.
int32_t llama3_end_of_turn(const Tokenizer& tok);

}  // namespace lct
