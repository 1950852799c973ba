// Chat conversations to tokens and a loss mask: the one chat-template implementation, shared by
// `lcdata chat` (training data: train on the assistant turns only) and generation ([gen]: the
// prompt with add_generation_prompt). The Llama-3 format is built in; other models' Jinja
// templates go through tools/chat_template.py (transformers' apply_chat_template with
// return_assistant_tokens_mask), whose token JSONL `lcdata tokens` reads.
//
// Llama-3 (the template Meta ships with Llama-3 Instruct, content trimmed):
//   <|begin_of_text|>( <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> )*
//   [<|start_header_id|>assistant<|end_header_id|>\n\n]        (add_generation_prompt)
// The loss mask is 1 on each assistant turn's content and its <|eot_id|> (the model learns to
// answer and to stop), 0 on everything else; mask[i] = 1 means token i counts as a target.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace lct {

struct ChatMessage {
  std::string role, content;
};

struct ChatTokens {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss_mask;  // one per token
};

class ChatTemplate {
 public:
  virtual ~ChatTemplate() = default;
  virtual std::string name() const = 0;
  virtual int32_t bos_id() const = 0;  // the token each conversation begins with
  virtual int32_t end_of_turn_id() const = 0;  // the token that ends a turn (generation stops there)
  // add_generation_prompt: end with the header of an assistant turn (the prompt for generation).
  virtual ChatTokens render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const = 0;
};

// "llama3". InputError when the tokenizer lacks the format's special tokens (names them).
std::unique_ptr<ChatTemplate> make_chat_template(const std::string& name, const Tokenizer& tok);

// One JSONL line {"messages": [{"role": ..., "content": ...}, ...]}; `where` (file:line) names
// the line in InputErrors.
std::vector<ChatMessage> parse_chat_json(const std::string& line, const std::string& where);

}  // namespace lct
