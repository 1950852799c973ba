#!/usr/bin/env bash
# lcdata's built-in Llama-3 chat template against transformers' apply_chat_template (through
# tools/chat_template.py, with a Llama-3 template marking the assistant turns): the same tokens and
# the same loss masks for every conversation of tests/data/chat/conversations.jsonl; `lcdata tokens`
# of transformers' output and `lcdata chat` write the same token stream and mask count; a loss mask
# whose length differs from its tokens is exit 2. Skips (77) without the project's Python.
set -uo pipefail
src=${LCT_SOURCE_DIR:?} bin=${LCT_BIN:?}
py=$src/.venv/bin/python3
if ! "$py" -c "import transformers, jinja2" 2>/dev/null; then
  echo "SKIP: .venv with transformers and jinja2 missing (make deps)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tok=$src/tests/data/tokenizer/llama3_style/tokenizer.json
chats=$src/tests/data/chat/conversations.jsonl
"$py" "$src/tools/chat_template.py" --tokenizer "$tok" --template "$src/tests/data/chat/llama3_generation.jinja" \
  "$chats" "$tmp/hf.jsonl" 2>/dev/null || { echo "FAIL: tools/chat_template.py"; exit 1; }
"$bin/lcdata" chat --tokenizer "$tok" --out "$tmp/native.jsonl" "$chats" >/dev/null || { echo "FAIL: lcdata chat"; exit 1; }
"$py" - "$tmp/hf.jsonl" "$tmp/native.jsonl" <<'PY' || exit 1
import json, sys
hf = [json.loads(l) for l in open(sys.argv[1])]
native = [json.loads(l) for l in open(sys.argv[2])]
assert len(hf) == len(native) == 3, (len(hf), len(native))
for i, (a, b) in enumerate(zip(hf, native)):
    assert a["tokens"] == b["tokens"], f"conversation {i + 1}: tokens differ\n{a['tokens']}\n{b['tokens']}"
    assert a["loss_mask"] == b["loss_mask"], f"conversation {i + 1}: masks differ\n{a['loss_mask']}\n{b['loss_mask']}"
    assert 0 < sum(a["loss_mask"]) < len(a["loss_mask"])
print(f"{len(hf)} conversations: tokens and assistant masks equal transformers' apply_chat_template")
PY
"$bin/lcdata" tokens --out "$tmp/hf.h5" --vocab-size 1508 "$tmp/hf.jsonl" >/dev/null || { echo "FAIL: lcdata tokens"; exit 1; }
"$bin/lcdata" chat --tokenizer "$tok" --out "$tmp/native.h5" "$chats" >/dev/null || { echo "FAIL: lcdata chat h5"; exit 1; }
a=$("$bin/lcdata" info "$tmp/hf.h5" | grep -E "stream_sha256|loss_mask")
b=$("$bin/lcdata" info "$tmp/native.h5" | grep -E "stream_sha256|loss_mask")
[ "$a" = "$b" ] || { echo "FAIL: the two files differ:"; echo "$a"; echo "$b"; exit 1; }
echo '{"tokens": [1, 2, 3], "loss_mask": [0, 1]}' >"$tmp/bad.jsonl"
out=$("$bin/lcdata" tokens --out "$tmp/bad.h5" --vocab-size 10 "$tmp/bad.jsonl" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "bad.jsonl:1: loss_mask has 2 entries for 3 tokens" <<<"$out" || { echo "FAIL: rc $rc: $out"; exit 1; }
echo "PASS"
