// Loss-masked chat data (issue 18). (1) Prompt tokens contribute zero gradient: the gradient of a
// packed micro-batch of Llama-3 conversations with the template's loss mask equals the gradient
// with targets only on the assistant turns as found independently in the token ids, and differs
// without the mask. (2) A chat run of the tiny model learns the answers: 8 one-word answers to
// "What color is the X?"; a model that ignored the question would lose ln 8 / (answer tokens)
// >= 0.4 nats per answer token; the run must end below 0.2 (it reaches ~0.05).
#include <cmath>
#include <fstream>

#include "core/rng.h"
#include "data/chat_template.h"
#include "equivalence.h"
#include "model/llama.h"
#include "train/batch.h"

namespace lct::test {
namespace {

const char* kFacts[8][2] = {{"sky", "blue"},   {"grass", "green"}, {"snow", "white"}, {"coal", "black"},
                            {"sun", "yellow"}, {"blood", "red"},   {"sea", "teal"},   {"rose", "pink"}};

std::vector<ChatMessage> conversation(Rng& rng) {
  const auto& f = kFacts[rng.below(8)];
  return {{"user", std::string("What color is the ") + f[0] + "?"}, {"assistant", f[1]}};
}

std::string tokenizer_path() { return data_dir() + "/tokenizer/llama3_style/tokenizer.json"; }

// Gradients of one micro-batch (B = 1, T = 128) at cp = 1 from the same initial weights.
std::vector<float> gradient(const MicroBatch& mb, double* loss) {
  ModelConfig m;
  m.vocab_size = 1508;
  m.dim = 32;
  m.n_layers = 2;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 8;
  m.ffn_dim = 64;
  RopeConfig r;
  ModelShape s;
  s.micro_batch = 1;
  s.seq_len = 128;
  auto ops = make_cpu_ops(DType::F32, 16);
  Llama model(m, r, s, *ops, nullptr, nullptr);
  std::vector<float> w;
  init_params_host(model.table(), m, 3, w);
  ops->from_host(model.params().flat.slice(0, model.table().total), w.data());
  ops->zero(model.grads().flat);
  *loss = model.forward_backward(mb, 1.0);
  std::vector<float> g(size_t(model.table().total));
  ops->to_host(g.data(), model.grads().flat.slice(0, model.table().total));
  return g;
}

TEST(ChatData, PromptTokensContributeZeroGradient) {
  auto tok = make_tokenizer(tokenizer_path());
  auto tmpl = make_chat_template("llama3", *tok);
  Rng rng(4);
  Sample s;
  while (s.tokens.size() < 129) {
    const ChatTokens c = tmpl->render(conversation(rng), false);
    s.tokens.insert(s.tokens.end(), c.tokens.begin(), c.tokens.end());
    s.loss_mask.insert(s.loss_mask.end(), c.loss_mask.begin(), c.loss_mask.end());
  }
  s.tokens.resize(129);
  s.loss_mask.resize(129);
  BatchLayout L;
  L.seq_len = 128;
  L.bos = tmpl->bos_id();
  L.reset_attention_mask = L.reset_position_ids = true;
  const MicroBatch masked = make_micro_batch({s}, 0, 1, L);

  // The assistant turns from the ids alone: after <|start_header_id|>assistant<|end_header_id|>
  // and the "\n\n" token, every token up to and including <|eot_id|>.
  const int32_t start = tok->token_id("<|start_header_id|>"), end = tok->token_id("<|end_header_id|>"),
                eot = tok->token_id("<|eot_id|>");
  const std::vector<int32_t> role = tok->encode("assistant", false), nl = tok->encode("\n\n", false);
  std::vector<char> answer(s.tokens.size(), 0);
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    if (s.tokens[i] != start) continue;
    size_t j = i + 1;
    bool is_assistant = true;
    for (int32_t r : role) is_assistant = is_assistant && j < s.tokens.size() && s.tokens[j++] == r;
    if (!is_assistant || j >= s.tokens.size() || s.tokens[j] != end) continue;
    j += 1 + nl.size();
    for (; j < s.tokens.size(); ++j) {
      answer[j] = 1;
      if (s.tokens[j] == eot) break;
    }
  }
  MicroBatch explicit_targets = masked;
  int64_t answers = 0;
  for (size_t i = 0; i < 128; ++i) {
    explicit_targets.targets[i] = answer[i + 1] ? s.tokens[i + 1] : -1;
    answers += answer[i + 1];
  }
  ASSERT_GT(answers, 10);
  EXPECT_EQ(count_targets(masked), answers) << "the template's mask marks exactly the assistant turns";
  Sample unmasked = s;
  unmasked.loss_mask.clear();
  double l_masked = 0, l_explicit = 0, l_all = 0;
  const std::vector<float> g_masked = gradient(masked, &l_masked), g_explicit = gradient(explicit_targets, &l_explicit),
                           g_all = gradient(make_micro_batch({unmasked}, 0, 1, L), &l_all);
  EXPECT_EQ(l_masked, l_explicit);
  EXPECT_LE(rel_error(g_masked, std::vector<float>(g_explicit)), 1e-6) << "prompt tokens must add no gradient";
  EXPECT_GT(rel_error(g_all, std::vector<float>(g_masked)), 1e-2) << "without the mask the prompt tokens do";
}

TEST(ChatData, ATinyModelLearnsTheAnswers) {
  const std::string dir = scratch_dir("chat_learns");
  {
    std::ofstream f(dir + "/chat.jsonl");
    Rng rng(1);
    for (int i = 0; i < 2000; ++i) {
      const auto c = conversation(rng);
      f << "{\"messages\": [{\"role\": \"user\", \"content\": \"" << c[0].content
        << "\"}, {\"role\": \"assistant\", \"content\": \"" << c[1].content << "\"}]}\n";
    }
  }
  CommandResult d = run_command(bin_dir() + "/lcdata chat --tokenizer " + tokenizer_path() + " --out " + dir +
                                "/chat.h5 " + dir + "/chat.jsonl");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  const std::string deck =
      "[run]\nout_dir = " + dir + "/out\n[model]\nvocab_size = 1508\ndim = 64\nn_layers = 2\nn_heads = 4\n"
      "n_kv_heads = 2\nffn_dim = 128\n[train]\nseq_len = 128\nmicro_batch = 4\nsteps = 150\nlr = 3e-3\n"
      "warmup_steps = 10\nmin_lr = 3e-4\nlog_every = 50\n[optim]\nweight_decay = 0\n[data]\ntrain = " + dir +
      "/chat.h5\nbos_token = 1501\nreset_attention_mask = true\nreset_position_ids = true\n[checkpoint]\nfinal = false\n";
  CommandResult r = run_lctrain(2, dir, deck, {"--checkpoint.resume=none", "--parallel.cp=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<double> l = losses(read_metrics(dir + "/out"));
  ASSERT_EQ(l.size(), 150u);
  double last = 0;
  for (size_t i = 140; i < 150; ++i) last += l[i] / 10;
  std::printf("answer-token loss: step 1 %.3f, mean of steps 141-150 %.4f\n", l[0], last);
  EXPECT_LT(last, 0.2) << "the answers are not learned";
}

}  // namespace
}  // namespace lct::test
