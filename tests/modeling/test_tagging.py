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


def _words(text):
    return [text[s:e] for s, e in split_words(text)]


def test_split_words_gives_back_conll_words_joined_by_spaces():
    """Training joins a sentence's words with spaces; prediction splits raw text. On CoNLL-style
    words both must agree, or the word a tag belongs to moves."""
    sentences = [
        ["The", "U.S.", "and", "the", "U.K.", "signed", ",", "e.g.", ",", "a", "deal", "."],
        ["Ph.D.", "students", "in", "Washington", "D.C.", "earn", "$", "1,000", "or", "3.5", "%", "more", "."],
        ["Germany", "'s", "Schmidt", "does", "n't", "agree", "--", "he", "'ll", "see", "..."],
        ["Jean-Pierre", "O'Neill", "sent", "an", "e-mail", "(", "x.com", ")", "!", "?"],
        ["She", "said", "``", "hello", "''", "at", "10:30", "on", "2020-05-01", "."],
        list("李明住在北京。"),
        list("東京でコーヒーを飲んだ。"),
        ["서울에서", "김민수", "씨를", "만났다", "."],
        ["café", "naïve", "São", "Paulo", "Zürich"],
    ]
    for words in sentences:
        text, spans = join_words(words)
        assert split_words(text) == spans, (words, _words(text))


def test_split_words_on_raw_text():
    assert _words("Anna lives in the U.S. now.") == ["Anna", "lives", "in", "the", "U.S.", "now", "."]
    assert _words("It costs 1,000.50 dollars, i.e. 3.5% more (e.g. U.S.-based firms).") == [
        "It", "costs", "1,000.50", "dollars", ",", "i.e.", "3.5", "%", "more", "(", "e.g.", "U.S.-based", "firms", ")", "."]
    # a word followed by one dot is the word and the dot (a sentence end), also "Mr." and "x.com."
    assert _words("Mr. Smith visited x.com. Wait...") == ["Mr", ".", "Smith", "visited", "x.com", ".", "Wait", "..."]
    # a comma between digits joins them only when both sides are digits
    assert _words("items 1,2 and Paris,1999 at 10:30: done") == ["items", "1,2", "and", "Paris", ",", "1999", "at", "10:30", ":", "done"]
    # an e-mail address is split at its "@", as CoNLL-style tokenisers split it
    assert _words("write to anna@x.com") == ["write", "to", "anna", "@", "x.com"]
    # no spaces: one character per word; Latin inside stays a word; Hangul runs are words
    assert _words("李明住在北京。") == list("李明住在北京。")
    assert _words("東京でiPhone15を買った") == ["東", "京", "で", "iPhone15", "を", "買", "っ", "た"]
    assert _words("김민수는 서울에 산다") == ["김민수는", "서울에", "산다"]
    # Thai: one character per word with its combining vowel and tone marks, so nothing is split off a mark
    thai = "สวัสดีครับ"
    assert _words(thai) == ["ส", "วั", "ส", "ดี", "ค", "รั", "บ"] and "".join(_words(thai)) == thai
    # combining marks stay in their word (decomposed "café", Devanagari vowel signs)
    assert _words("cafe\u0301 नमस्ते दुनिया") == ["cafe\u0301", "नमस्ते", "दुनिया"]


def test_split_words_keeps_the_former_rule_on_ordinary_english():
    """The former rule (word runs joined by - ' ’ . and single punctuation) is unchanged where
    text has no dotted abbreviation, comma or colon between digits, repeated punctuation, clitic
    written apart or script written without spaces."""
    import re

    former = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]")
    texts = [
        "Anna's e-mail: anna@x.com, Berlin!",
        "The quick brown fox doesn't jump over the lazy dog's back (twice); it's 3.5 km away.",
        "Rock'n'roll, state-of-the-art and Smith’s work: \"quoted\" [brackets] {braces} #tags @you 50% $5.",
        "Version 2.0.1 of foo_bar was released on 2021-03-04 at 10 a.m",
    ]
    for text in texts:
        assert split_words(text) == [m.span() for m in former.finditer(text)], text
