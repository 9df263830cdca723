"""Word splitting, sub-token alignment and BIO span decoding."""
from polyhead.modeling.tagging import bio_to_spans, first_subtokens, join_words, split_words


def test_bio_to_spans_conlleval_semantics():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG"]
    assert bio_to_spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 7)]
    assert bio_to_spans(["O", "O"]) == []
    assert bio_to_spans(["B-X"]) == [("X", 0, 1)]


def test_split_words_keeps_offsets():
    text = "Anna's e-mail: anna@x.com, Berlin!"
    spans = split_words(text)
    words = [text[s:e] for s, e in spans]
    assert words[0] == "Anna's" and "e-mail" in words and words[-1] == "!"


def test_join_words_spans():
    text, spans = join_words(["New", "York", "."])
    assert text == "New York ." and [text[s:e] for s, e in spans] == ["New", "York", "."]


def test_first_subtokens_with_real_tokenizer():
    from polyhead.modeling.encoder import embedded_default_path
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedded_default_path()))
    text, spans = join_words(["Schwarzenegger", "visited", "Reykjavik", "."])
    enc = tok(text, return_offsets_mapping=True)
    firsts = first_subtokens(enc["offset_mapping"], spans)
    assert firsts[0] == 1  # after [CLS]
    assert all(b > a for a, b in zip(firsts, firsts[1:]))
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    assert pieces[firsts[2]].startswith("rey")


def test_first_subtokens_marks_truncated_words():
    offsets = [(0, 0), (0, 3), (0, 0)]  # only the first word survived truncation
    assert first_subtokens(offsets, [(0, 3), (4, 8)]) == [1, -1]
