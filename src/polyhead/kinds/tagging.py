"""Word splitting, sub-token alignment and BIO tag helpers shared by training, prediction and metrics."""
from __future__ import annotations

import bisect

import regex


def bio_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Turn a BIO/IOB tag sequence into (type, start, end) word spans, end exclusive.

    conlleval semantics: an I-X that does not continue an X entity starts a new one,
    so a malformed sequence still yields entities rather than silently dropping them.
    """
    spans: list[tuple[str, int, int]] = []
    cur_type: str | None = None
    start = 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-")
        if prefix not in ("B", "I") or not typ:
            prefix, typ = "O", ""
        starts_new = prefix == "B" or (prefix == "I" and typ != cur_type)
        if cur_type is not None and (prefix == "O" or starts_new):
            spans.append((cur_type, start, i))
            cur_type = None
        if prefix in ("B", "I") and (starts_new or cur_type is None):
            cur_type, start = typ, i
    return spans


# Scripts written without spaces between words: Han, Hiragana, Katakana (with the prolonged sound
# mark and the iteration marks), Thai, Lao, Myanmar and Khmer.
_NO_SPACE = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"  # 々 〆 〇, Suzhou numerals, kana repeat marks
    "\u3040-\u30ff"  # Hiragana, Katakana (ー included)
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han: extension A, unified, compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003ffff"  # Han extensions B and later
)
_LETTER = rf"[^\W\d_{_NO_SPACE}]"  # a letter of a script written with spaces
_W = rf"(?:[^\W{_NO_SPACE}]|\d|\p{{M}})"  # letters, digits of any script, _, and combining marks
_ABBREVIATION = rf"(?:{_LETTER}{{1,2}}\.){{2,}}(?![\w\p{{M}}])"  # U.S., e.g., Ph.D. keep their last dot
_STEM = rf"(?:{_ABBREVIATION}|{_W}+)"
_JOIN = r"(?:[-'’.]|(?<=\d)[,:](?=\d))"  # e-mail, don't, x.com, 3.5, 1,000, 10:30
_WORD = regex.compile(
    rf"{_STEM}(?:{_JOIN}{_STEM})*"
    rf"|[{_NO_SPACE}]\p{{M}}*"  # one character of a script without spaces, with its combining marks
    r"|(?<!\S)['’](?i:s|re|ve|ll|d|m)(?![\w'’])"  # a clitic written apart ("Germany 's"): 's, 're, 've, 'll, 'd, 'm
    r"|(?P<p>[^\w\s])(?P=p)*"  # punctuation; a run of one repeated character ("...", "--", "!!") is one word
)


def split_words(text: str) -> list[tuple[int, int]]:
    """Split raw text into word character spans (start, end), end exclusive.

    The one word rule of token tasks: prediction splits raw text with it, and distillation reads a
    token teacher at the first sub-token of each of its words. It is independent of the tokenizer,
    and it follows CoNLL-style tokenisation, so the text made by joining a sentence's training
    words with spaces splits back into those words:

    - a word is a run of letters, digits and combining marks, joined across ``-``, ``'``, ``’`` and
      ``.`` (``e-mail``, ``don't``, ``n't``, ``x.com``, ``3.5``) and across ``,`` and ``:`` between
      digits (``1,000``, ``10:30``);
    - an abbreviation written with inner dots keeps its last dot (``U.S.``, ``e.g.``, ``Ph.D.``:
      letter groups of one or two letters, each followed by a dot); a word followed by a single dot
      (``Paris.``, also ``Mr.``) is the word and the dot;
    - a clitic written apart keeps its apostrophe (``Germany 's``);
    - every other non-space character is a word of its own, except that a run of one repeated
      punctuation character (``...``, ``--``, ``!!``) is one word;
    - scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Myanmar,
      Khmer) give one word per character (with its combining marks): raw text in them has no
      word boundaries to find without a dictionary. Chinese NER data is usually tagged one
      character per token already; word-level tags convert without loss (B- on an entity's first
      character, I- on the rest). Hangul is written with spaces; its runs are words.
    """
    return [m.span() for m in _WORD.finditer(text)]


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join pre-split words with spaces; return the text and each word's character span."""
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def first_subtokens(offsets: list[tuple[int, int]], word_spans: list[tuple[int, int]]) -> list[int]:
    """For each word, the index of its first sub-token, or -1 when truncation cut it off.

    Sub-tokens are matched to words by character offsets, so this works for any fast
    tokenizer; special tokens have empty (0, 0) offsets and are skipped.
    """
    result = [-1] * len(word_spans)
    w = 0
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        while w < len(word_spans) and word_spans[w][1] <= s:
            w += 1
        if w >= len(word_spans):
            break
        ws, we = word_spans[w]
        if s < we and e > ws and result[w] == -1:
            result[w] = t
    return result


def inside_earlier_subtoken(offsets: list[tuple[int, int]], word_spans: list[tuple[int, int]], firsts: list[int]) -> list[bool]:
    """For each word, whether it has no sub-token of its own because a sub-token that begins in an
    earlier word runs into it (raw "北京" may be one sub-token, two words), as opposed to a word that
    truncation cut off or whose characters the tokenizer dropped (no sub-token touches it)."""
    tokens = sorted((s, e) for s, e in offsets if e > s)
    starts = [s for s, _ in tokens]
    out = []
    for (ws, we), first in zip(word_spans, firsts):
        i = bisect.bisect_left(starts, we) - 1  # the last sub-token that begins before the word ends
        out.append(first < 0 and i >= 0 and tokens[i][0] < ws < tokens[i][1])
    return out
