#!/usr/bin/env python3
"""Chat JSONL -> pretokenized JSONL through a model's own Jinja chat template (transformers'
apply_chat_template with return_assistant_tokens_mask=True), for models whose format lcdata does
not build in (it builds Llama-3's: `lcdata chat`). Then: `lcdata tokens --out FILE.h5 --vocab-size N`.

  tools/chat_template.py --tokenizer DIR_OR_tokenizer.json [--template FILE.jinja] IN.jsonl OUT.jsonl

IN: one {"messages": [{"role": ..., "content": ...}, ...]} per line. OUT: one {"tokens": [...],
"loss_mask": [...]} per line, the mask 1 on the tokens the template marks with {% generation %}
(the assistant turns). The template must mark them: transformers refuses the mask otherwise.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True, help="an HF tokenizer folder, or a tokenizer.json")
    ap.add_argument("--template", help="a Jinja chat template file (default: the tokenizer's own)")
    ap.add_argument("--bos", default="<|begin_of_text|>", help="bos_token for a bare tokenizer.json")
    ap.add_argument("input")
    ap.add_argument("output")
    a = ap.parse_args()
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if os.path.isdir(a.tokenizer):
        tok = AutoTokenizer.from_pretrained(a.tokenizer)
    else:
        tok = PreTrainedTokenizerFast(tokenizer_file=a.tokenizer, bos_token=a.bos)
    template = open(a.template).read() if a.template else None
    n = 0
    with open(a.input) as fin, open(a.output, "w") as fout:
        for lineno, line in enumerate(fin, 1):
            if not line.strip():
                continue
            messages = json.loads(line)["messages"]
            out = tok.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                          return_assistant_tokens_mask=True)
            ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
            if len(ids) != len(mask):
                sys.exit(f"{a.input}:{lineno}: {len(mask)} mask entries for {len(ids)} tokens")
            fout.write(json.dumps({"tokens": ids, "loss_mask": mask}) + "\n")
            n += 1
    print(f"wrote {a.output}: {n} conversations")


if __name__ == "__main__":
    main()
