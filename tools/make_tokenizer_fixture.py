#!/usr/bin/env python3
"""Makes the tokenizer test fixtures in tests/data/tokenizer/ with HF `tokenizers` (run by hand, output
committed; the C++ tests never need Python):

  llama3_style/tokenizer.json  byte-level BPE configured like Llama-3: Split(Llama-3 regex, Isolated) then
                               ByteLevel(add_prefix_space=False, use_regex=False), ignore_merges, merges as
                               [a, b] pairs, special tokens after the vocabulary, a TemplateProcessing that
                               puts <|begin_of_text|> first, one extra vocab word only ignore_merges reaches.
  gpt2_style/tokenizer.json    GPT-2 style: ByteLevel(use_regex=True) pre-tokenizer, merges as "a b" strings.
  gpt2_prefix_space/tokenizer.json  the same with ByteLevel(add_prefix_space=True).
  cases.json                   test strings with the ids HF gives for each tokenizer
                               (encode(text, add_special_tokens=False), with and without special-token
                               parsing), decode results, and crafted decode cases.

Both are trained on ~400 KB of generated text: English, code, accented Latin, Greek, Cyrillic, CJK, Arabic,
Devanagari, emoji (with ZWJ), digits, whitespace runs, newlines. Deterministic (fixed seeds).

Usage: python3 tools/make_tokenizer_fixture.py [--out tests/data/tokenizer]
"""
import argparse
import json
import os
import random

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>"]
NON_SPECIAL = "<tool_call>"  # an added token that is not special: matched even when specials are not
VOCAB_SIZE = 1500

WORDS = """the of and to in is was he for it with as his on be at by had are but from or have an they which
one you were her all she there would their we him been has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like our
over man me even most made after also did many before must through back years where much your way well down
should because each just those people how too little state good very make world still own see men work long
get here between both life being under never day same another know while last might us great old year off
come since against go came right used take three house model token training context ring attention layer
gradient parallel memory sequence length batch loss optimizer checkpoint rank device kernel tensor shard
data document text window position rotary embedding norm weight bias learning rate schedule warmup decay
""".split()
NAMES = "Alice Bob Carol Dave Eve Mallory Trent Peggy Victor Walter Zoe".split()
ACCENTED = """café naïve résumé über façade jalapeño São Paulo Zürich Kraków crème brûlée déjà vu piñata
coöperate señor Ångström Øresund Þingvellir æther œuvre Dvořák Łódź straße Größe fiancée""".split()
GREEK = "Καλημέρα κόσμε η γλώσσα είναι όμορφη αλφάβητο Ελληνικά".split()
CYRILLIC = "Привет мир как дела это тестовый текст для токенизатора Москва".split()
CJK = ["你好世界", "这是一个测试", "机器学习", "长上下文训练", "日本語のテキスト", "東京", "ひらがな", "カタカナ",
       "한국어", "안녕하세요", "中文分词"]
ARABIC = "مرحبا بالعالم هذا نص تجريبي العربية".split()
DEVANAGARI = "नमस्ते दुनिया हिन्दी भाषा परीक्षण".split()
EMOJI = ["😀", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🤖", "✨", "🎉", "👩‍💻"]
CODE = [
    "def {f}({a}, {b}):\n    if {a} > {b}:\n        return {a} - {b}\n    return {b} ** 2\n",
    "for (int {a} = 0; {a} < {n}; ++{a}) {{\n  {f}[{a}] += {b} * {n};\n}}\n",
    "#include <stdio.h>\nint main(void) {{\n\tprintf(\"%d\\n\", {n});\n\treturn 0;\n}}\n",
    "class {F}:\n    def __init__(self, {a}):\n        self.{a} = {a}  # store it\n",
    "const {a} = await fetch(`https://example.com/api/{f}?id={n}`);\n",
    "SELECT {a}, COUNT(*) FROM {f} WHERE {b} >= {n} GROUP BY {a};\n",
    "{{\"{a}\": [{n}, {n}.5, null], \"{b}\": {{\"ok\": true}}}}\n",
    "if [ -f \"${a}\" ]; then\n  echo \"{f} $(( {n} + 1 ))\" >> /tmp/{b}.log\nfi\n",
    "  {a}_{b} = {f}({n}) if {a} != {b} else None\r\n",
]
IDENTS = "x y i j n count total buf ptr node value result index lhs rhs tmp data_len maxVal".split()


def make_corpus(rng, target_bytes=400_000):
    parts = []
    size = 0
    while size < target_bytes:
        kind = rng.random()
        if kind < 0.45:  # English-ish sentences
            n = rng.randint(5, 25)
            words = [rng.choice(WORDS) for _ in range(n)]
            if rng.random() < 0.3:
                words.insert(rng.randrange(len(words)), rng.choice(NAMES) + rng.choice(["'s", "'ll", "'d", "'re"]))
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)), rng.choice(["don't", "can't", "I'm", "we've", "IT'S"]))
            s = " ".join(words)
            s = s[0].upper() + s[1:] + rng.choice([".", ".", "!", "?", ";", ":"])
            parts.append(s + rng.choice([" ", " ", "\n", "\n\n", "  "]))
        elif kind < 0.65:  # code
            t = rng.choice(CODE)
            parts.append(t.format(f=rng.choice(IDENTS), F=rng.choice(IDENTS).capitalize(), a=rng.choice(IDENTS),
                                  b=rng.choice(IDENTS), n=rng.randint(0, 100000)))
        elif kind < 0.85:  # other scripts
            pool = rng.choice([ACCENTED, GREEK, CYRILLIC, CJK, ARABIC, DEVANAGARI])
            s = " ".join(rng.choice(pool) for _ in range(rng.randint(3, 12)))
            if rng.random() < 0.4:
                s += " " + rng.choice(EMOJI)
            parts.append(s + rng.choice([". ", "\n", "。", "! "]))
        else:  # numbers, dates, tables, whitespace runs
            r = rng.random()
            if r < 0.4:
                parts.append(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                             f"{rng.uniform(0, 1e6):.3f} {rng.randint(0, 10**rng.randint(1, 9))}\n")
            elif r < 0.7:
                parts.append("| " + " | ".join(str(rng.randint(0, 9999)) for _ in range(4)) + " |\n")
            else:
                parts.append(rng.choice([" " * rng.randint(2, 12), "\t" * rng.randint(1, 3), "\n" * rng.randint(2, 4),
                                         "\r\n"]) + rng.choice(WORDS))
        size += len(parts[-1].encode())
    return "".join(parts)


def train(corpus, pre_tokenizer):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = corpus.splitlines(keepends=True)
    tok.train_from_iterator(["".join(lines[i:i + 50]) for i in range(0, len(lines), 50)],
                            trainer)
    return tok


def byte_level_bytes(data):
    """GPT-2's bytes_to_unicode applied to each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return "".join(table[b] for b in data)


def byte_level(text):
    return byte_level_bytes(text.encode())


def make_llama3(corpus):
    tok = train(corpus, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]))
    d = json.loads(tok.to_str())
    d["model"]["ignore_merges"] = True
    # A word merges cannot build (no merge path) that ignore_merges must still emit whole.
    d["model"]["vocab"][byte_level(" Zyzzyva")] = len(d["model"]["vocab"])
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tok.add_tokens([AddedToken(NON_SPECIAL, special=False, normalized=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok


def make_gpt2(corpus):
    tok = train(corpus, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in ["<|endoftext|>", "<|eot_id|>"]])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def with_prefix_space(tok):
    """The GPT-2 style tokenizer with ByteLevel(add_prefix_space=True): ' ' put in front of each span."""
    d = json.loads(tok.to_str())
    d["pre_tokenizer"]["add_prefix_space"] = True
    return Tokenizer.from_str(json.dumps(d))


def test_strings(rng, corpus):
    s = ["", " ", "a", "Hello world", "Hello, world!", "hello  world", "The quick brown fox jumps over the lazy dog."]
    # contractions, any case
    s += ["I'm", "you're", "he's", "she'S", "THEY'RE", "We'Ve", "it'LL", "I'D", "don't", "DON'T", "'s", "'S", "'ſ",
          "ſ'ſ", "x'ſt", "rock'n'roll", "''s", "' s", "'", "it''s", "'LL'll'Ll'lL", "'re're", "'ve'VE", "'M'm'D'd",
          "'t'T", "y'all", "o'clock", "Bob's car's", "'sup", "'real", "'Vegas", "a 's", "a 'S", " 're"]
    # digit runs 1..7, in context, other number kinds
    s += ["1234567"[:k] for k in range(1, 8)]
    s += [" " + "9876543"[:k] for k in range(1, 8)]
    s += ["a1234567b", "x12 y345 z6789", "3.14159", "1,000,000", "2024-01-15", "v1.2.3", "0x1F", "1e-5", "$42.50",
          "٣٤٥٦", "½", "Ⅻ", "x²³", "१२३४", "１２３", "10%"]
    # scripts
    s += ["Hello мир 世界", "naïve café", "Ελληνικά", "עברית", "العربية", "日本語のテキスト", "한국어", "हिन्दी", "ไทย",
          "Straße", "ǅemal", "İstanbul ılık", "你好，世界！", "中文English混合", "Привет,мир", "x\U000105C0y"]
    # emoji, ZWJ sequences, flags, skin tones
    s += ["😀", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "a😀b", " 😀😀", "🇫🇷🇩🇪", "I ❤️ NY", "👩‍💻 coding", "emoji:🚀!"]
    # combining marks
    s += ["e\u0301", "a\u0300\u0301\u0302", "\u0301abc", " \u0301", "Z\u0324\u0354\u0367\u0311a\u0308l\u036eg\u0301o",
          "n\u0303o", "\u0915\u094d\u0937"]
    # whitespace
    s += ["\t", "a\tb", "\t\tword", "a\r\nb", "\r\n", "\r\n\r\n", "line1\nline2\n", "trailing   ", "  leading",
          "a  b", "a   b", "    indented code", "\n\n\n", " \n \n ", "a \n b", "\u00a0b", "a\u3000b", "x\u2009y",
          "\x0b\x0c", "a\x85b", "\u2028", "end \t\n", " \t \t x", "\n x", "x \r\n\r\n  y", "\r", "\r\r\nx",
          "a\n\n\tb", "   ", " " * 40 + "x", "\t\n\t\n"]
    # special tokens in text (the two tokenizers know different ones), near misses, the non-special added token
    s += ["<|begin_of_text|>Hello", "Hello<|end_of_text|>", "a<|eot_id|>b", "<|eot_id|><|eot_id|>",
          "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>", "<|begin_of_text|", "<|eot_id",
          "<<|eot_id|>>", " <|eot_id|> ", "<|endoftext|>", "x<|endoftext|>y", "<|reserved_special_token_0|>",
          "call <tool_call>{\"x\": 1}", "<tool_call><|eot_id|>", "<|eot_id|>  \n", "  <|eot_id|>x"]
    # code and punctuation
    s += ["def f(x):\n    return x**2\n", "int main() { return 0; }", "for (i = 0; i < n; ++i) {", "if x == 1:\n\tpass",
          "a->b", "#include <stdio.h>", "x += 1  # comment", "{\"key\": [1, 2, 3]}", "SELECT * FROM t WHERE id=42;",
          "https://example.com/path?q=1&r=2", "foo_bar_baz", "camelCaseIdentifier", "__init__", "!==", "...",
          "?!?!", "—", "“quoted”", "«guillemets»", "(a)", "((a))", "'quoted'", "\"double\"", "a.b.c", "--flag=1",
          "C++17", "e.g.", "x\n}\n", ";\n\n", "  }\r\n"]
    # control characters and odd code points
    s += ["\x00", "a\x00b", "\x01\x02\x7f", "\x1c\x1d\x1e\x1f", "\ufeffBOM", "\ue000", "\u0378", "\U0010FFFF",
          "\ufffd", "a\u200bb", "a\u200db", "\u180e"]
    # long runs
    s += ["a" * 300, " " * 300, "-" * 200, "9" * 50, "ab" * 100, "\n" * 50, "😀" * 30]
    # corpus samples
    lines = corpus.splitlines(keepends=True)
    for _ in range(30):
        i = rng.randrange(len(lines) - 3)
        s.append("".join(lines[i:i + rng.randint(1, 3)]))
    # random strings over a nasty alphabet
    alphabet = list(" \t\n\r\x0b\x85\xa0\u3000'sStTrReEvVlLmMdDſab9012x.,!?()-_\"#<>|éü中文😀\u200d\u0301٣Ⅻ½")
    for _ in range(60):
        s.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))))
    return s


def encode_cases(toks, strings):
    cases = []
    for text in strings:
        case = {"text": text}
        for name, tok in toks.items():
            tok.encode_special_tokens = False
            ids = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = True
            ids_plain = tok.encode(text, add_special_tokens=False).ids
            tok.encode_special_tokens = False
            entry = {"ids": ids}
            if ids_plain != ids:
                entry["ids_no_special"] = ids_plain
            decoded = tok.decode(ids, skip_special_tokens=False)
            if decoded != text:
                entry["decoded"] = decoded
            with_bos = tok.encode(text, add_special_tokens=True).ids
            prefix = tok.encode("", add_special_tokens=True).ids
            assert with_bos == prefix + ids, (name, text)
            case[name] = entry
        cases.append(case)
    return cases


def decode_cases(tok):
    """Byte-token sequences with broken UTF-8 and added tokens in between, and what HF decodes them to."""
    v = tok.get_vocab()
    byte_id = {i: v[byte_level_bytes(bytes([i]))] for i in range(256)}
    special = tok.token_to_id("<|eot_id|>")
    seqs = [[0xE2, 0x82, 0xAC], [0xE2, 0x82], [0xE2, 0x82, "S", 0xAC], [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80],
            [0xF0, 0x9F, 0x98], [0xF0, 0x9F, 0x98, 0x80], [0x61, 0x80, 0x62], [0xE0, 0x80, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, "S", 0x98, 0x80], [0xC3, 0xA9, 0xC3], ["S"], [0x41, "S", "S", 0x42],
            [0xF5, 0x80], [0xE1, 0x80, 0x41], [0xF1, 0x80, 0x80, 0xE1]]
    tool = tok.token_to_id(NON_SPECIAL)
    if tool is not None:
        seqs += [[0xE2, "T", 0x61], ["T", "S", 0x20]]
    out = []
    for seq in seqs:
        ids = [special if x == "S" else tool if x == "T" else byte_id[x] for x in seq]
        out.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False)})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "tokenizer"))
    args = ap.parse_args()
    rng = random.Random(20240801)
    corpus = make_corpus(rng)
    gpt2 = make_gpt2(corpus)
    toks = {"llama3_style": make_llama3(corpus), "gpt2_style": gpt2, "gpt2_prefix_space": with_prefix_space(gpt2)}
    info = {}
    for name, tok in toks.items():
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
        path = os.path.join(args.out, name, "tokenizer.json")
        d = json.loads(tok.to_str())
        if name.startswith("gpt2"):
            d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]  # the older "a b" spelling
        with open(path, "w") as f:
            json.dump(d, f, ensure_ascii=False, separators=(",", ":"))
        tok = Tokenizer.from_file(path)  # test what was written
        toks[name] = tok
        info[name] = {"path": f"{name}/tokenizer.json", "vocab_size": tok.get_vocab_size(with_added_tokens=True),
                      "with_bos_prefix": tok.encode("", add_special_tokens=True).ids,
                      "token_ids": {t: tok.token_to_id(t) for t in SPECIALS + ["<|endoftext|>", NON_SPECIAL, "Ġthe",
                                                                             byte_level(" Zyzzyva"), "no-such-token"]}}
    strings = test_strings(random.Random(7), corpus)
    cases = encode_cases(toks, strings)
    zy = toks["llama3_style"].encode(" Zyzzyva", add_special_tokens=False).ids
    assert len(zy) == 1, zy  # ignore_merges is exercised
    fixture = {"generator": "tools/make_tokenizer_fixture.py", "tokenizers": info, "cases": cases,
               "decode_cases": {name: decode_cases(tok) for name, tok in toks.items()}}
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(fixture, f, ensure_ascii=True, indent=None, separators=(",", ":"))
    print(f"{len(cases)} cases; vocab sizes " + ", ".join(f"{n}={i['vocab_size']}" for n, i in info.items()))


if __name__ == "__main__":
    main()
