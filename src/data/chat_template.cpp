#include "data/chat_template.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lct {
namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

class Llama3Template final : public ChatTemplate {
 public:
  explicit Llama3Template(const Tokenizer& tok) : tok_(tok) {
    bos_ = special("<|begin_of_text|>");
    start_ = special("<|start_header_id|>");
    end_ = special("<|end_header_id|>");
    eot_ = special("<|eot_id|>");
  }
  std::string name() const override { return "llama3"; }
  int32_t bos_id() const override { return bos_; }
  int32_t end_of_turn_id() const override { return eot_; }

  ChatTokens render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const override {
    ChatTokens out;
    auto put = [&](const std::vector<int32_t>& ids, bool train) {
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
      out.loss_mask.insert(out.loss_mask.end(), ids.size(), uint8_t(train));
    };
    put({bos_}, false);
    for (const ChatMessage& m : messages) {
      const bool assistant = m.role == "assistant";
      put({start_}, false);
      put(tok_.encode(m.role, false), false);
      put({end_}, false);
      // "\n\n" + content is one stretch of text between special tokens, tokenized as a whole (as
      // the rendered string is); the mask starts where the tokens of "\n\n" alone end.
      const std::vector<int32_t> body = tok_.encode("\n\n" + trim(m.content), false);
      size_t head = 0;
      while (head < newlines_.size() && head < body.size() && body[head] == newlines_[head]) ++head;
      put(std::vector<int32_t>(body.begin(), body.begin() + long(head)), false);
      put(std::vector<int32_t>(body.begin() + long(head), body.end()), assistant);
      put({eot_}, assistant);
    }
    if (add_generation_prompt) {
      put({start_}, false);
      put(tok_.encode("assistant", false), false);
      put({end_}, false);
      put(newlines_, false);
    }
    return out;
  }

 private:
  int32_t special(const std::string& text) const {
    const int32_t id = tok_.token_id(text);
    if (id < 0)
      throw InputError(str("chat template llama3: tokenizer ", tok_.name(), " has no ", text,
                           " token; use a Llama-3 tokenizer.json, or tools/chat_template.py for other models"));
    return id;
  }
  const Tokenizer& tok_;
  int32_t bos_ = -1, start_ = -1, end_ = -1, eot_ = -1;
  std::vector<int32_t> newlines_ = tok_.encode("\n\n", false);
};

}  // namespace

std::unique_ptr<ChatTemplate> make_chat_template(const std::string& name, const Tokenizer& tok) {
  if (name == "llama3") return std::make_unique<Llama3Template>(tok);
  throw InputError(str("chat template '", name, "': lcdata knows llama3; for another model's Jinja template run "
                       "tools/chat_template.py and `lcdata tokens` (docs/data.md)"));
}

std::vector<ChatMessage> parse_chat_json(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const std::exception& e) {
    throw InputError(str(where, ": not a JSON object: ", e.what()));
  }
  if (!j.is_object() || !j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
    throw InputError(str(where, ": expected {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}"));
  std::vector<ChatMessage> out;
  for (const auto& m : j["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw InputError(str(where, ": message ", out.size() + 1, " needs a string \"role\" and a string \"content\""));
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

}  // namespace lct
