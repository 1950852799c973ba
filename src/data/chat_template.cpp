#include "data/chat_template.h"

#include "core/error.h"
#include "data/tokenizer.h"

namespace lct {

namespace {

void check_role(const std::string& role) {
  if (role != "system" && role != "user" && role != "assistant")
    throw InputError(str("chat message role '", role, "': choose system, user or assistant"));
}

int32_t special(const Tokenizer& tok, const std::string& name) {
  const int32_t id = tok.token_id(name);
  if (id < 0)
    throw InputError(str("the Llama-3 chat template needs the special token ", name, ", which tokenizer '", tok.name(),
                         "' does not have (use the model's tokenizer.json, or leave generate.chat = false)"));
  return id;
}

}  // namespace

std::string llama3_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string s = "<|begin_of_text|>";
  for (const ChatMessage& m : messages) {
    check_role(m.role);
    s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
  }
  if (add_generation_prompt) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return s;
}

int32_t llama3_end_of_turn(const Tokenizer& tok) { return special(tok, "<|eot_id|>"); }

ChatTokens llama3_chat_tokens(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                              bool add_generation_prompt) {
  const int32_t bos = special(tok, "<|begin_of_text|>"), start = special(tok, "<|start_header_id|>"),
                end = special(tok, "<|end_header_id|>"), eot = special(tok, "<|eot_id|>");
  ChatTokens out;
  auto add = [&](const std::vector<int32_t>& ids, uint8_t mask) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.assistant_mask.insert(out.assistant_mask.end(), ids.size(), mask);
  };
  auto header = [&](const std::string& role) {
    add({start}, 0);
    add(tok.encode(role, false), 0);
    add({end}, 0);
    add(tok.encode("\n\n", false), 0);
  };
  add({bos}, 0);
  for (const ChatMessage& m : messages) {
    check_role(m.role);
    header(m.role);
    const uint8_t a = m.role == "assistant";
    add(tok.encode(m.content, false), a);
    add({eot}, a);
  }
  if (add_generation_prompt) header("assistant");
  return out;
}

}  // namespace lct
