"""Token tasks on the three tokenizer families a sentence-transformers model comes with: WordPiece
(BERT), byte-level BPE (RoBERTa) and SentencePiece (XLM-R). Each tiny model is built here, with a
tokenizer trained here on a few sentences (no hub), saved as an encoder folder, trained on a token
task, loaded and asked for entities in raw text. The training path (words joined by spaces, first
sub-token by offsets) and the prediction path (the text split by `split_words`) must put every
word at the same sub-token, whatever the tokenizer splits."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from conftest import make_tiny_encoder
from train_helpers import TEST_TRAINING

from polyhead import load
from polyhead.errors import PolyheadError
from polyhead.kinds.tagging import first_subtokens, join_words, split_words
from polyhead.modeling.encoder import Encoder
from polyhead.modeling.tasks import TaskSpec
from polyhead.training.config import load_config
from polyhead.training.data import build_sources, collate
from polyhead.training.distill import word_starts
from polyhead.training.loop import train

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
MAX_LENGTH = 64

# CoNLL-style words: abbreviations with dots, a clitic written apart, hyphenated words, numbers with
# a decimal point and a thousands comma, and Chinese given one character per word.
SENTENCES = [
    (["Anna", "lives", "in", "the", "U.S.", "now", "."], ["B-PER", "O", "O", "O", "B-LOC", "O", "O"]),
    (["Bob", "Smith", "visited", "Paris", "on", "Monday", "."], ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]),
    (["Carla", "'s", "e-mail", "came", "from", "New", "York", "."], ["B-PER", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]),
    (["e.g.", "Rome", "is", "3.5", "hours", "and", "1,000", "km", "away", "!"], ["O", "B-LOC", "O", "O", "O", "O", "O", "O", "O", "O"]),
    (list("李明有一天上北京。"), ["B-PER", "I-PER", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]),
    (["nothing", "to", "see", "here", "..."], ["O", "O", "O", "O", "O"]),
]
CORPUS = [join_words(words)[0] for words, _ in SENTENCES] + [
    "The weather in Berlin was fine.", "北京和上海是中国的城市。", "Dana's friends met in the U.K. on Friday.",
    "Prices rose by 2.5 percent to 4,200 euros.", "Nobody lives there any more.",
]


# -- the three families, built in the test -------------------------------------------------------
def _bpe_tokenizer(trim_offsets: bool = True, add_prefix_space: bool = False) -> Any:
    """A RoBERTa tokenizer: byte-level BPE trained on CORPUS."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 5, vocab_size=500, min_frequency=2, special_tokens=SPECIALS, show_progress=False)
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                trim_offsets=trim_offsets, add_prefix_space=add_prefix_space, model_max_length=512)


def _sentencepiece_tokenizer() -> Any:
    """An XLM-R tokenizer: a SentencePiece unigram model (Metaspace "▁") trained on CORPUS."""
    from tokenizers import SentencePieceUnigramTokenizer, Tokenizer
    from transformers import XLMRobertaTokenizerFast

    spm = SentencePieceUnigramTokenizer()
    spm.train_from_iterator(CORPUS * 5, vocab_size=600, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False)
    # The trainer's scores differ in the last bits from run to run, and pieces with equal scores
    # come in any order: rounded and sorted, the same model (ids included) every time.
    state = json.loads(spm._tokenizer.to_str())
    specials, pieces = state["model"]["vocab"][: len(SPECIALS)], state["model"]["vocab"][len(SPECIALS):]
    state["model"]["vocab"] = specials + sorted(([p, round(score, 2)] for p, score in pieces), key=lambda x: (-x[1], x[0]))
    return XLMRobertaTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)), bos_token="<s>", eos_token="</s>",
                                   sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                   mask_token="<mask>", model_max_length=512)


def _roberta_like(tokenizer: Any, model: str, max_length: int | None) -> Encoder:
    """A 2-layer, 32-wide RoBERTa or XLM-R with random weights: 512 tokens, 514 positions (the
    padding index offsets RoBERTa's position ids by 2)."""
    from transformers import RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

    config_class, model_class = (RobertaConfig, RobertaModel) if model == "roberta" else (XLMRobertaConfig, XLMRobertaModel)
    torch.manual_seed(0)
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=tokenizer.model_max_length + 2,
                          pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id)
    return Encoder(backbone=model_class(config, add_pooling_layer=False), tokenizer=tokenizer, device="cpu", max_length=max_length)


def family_encoder(family: str, max_length: int | None = MAX_LENGTH) -> Encoder:
    if family == "wordpiece":
        return make_tiny_encoder(max_length=max_length or MAX_LENGTH)
    if family == "bytelevel-bpe":
        return _roberta_like(_bpe_tokenizer(), "roberta", max_length)
    return _roberta_like(_sentencepiece_tokenizer(), "xlm-roberta", max_length)


FAMILIES = ["wordpiece", "bytelevel-bpe", "sentencepiece"]


# -- training path = prediction path -------------------------------------------------------------
def _write_config(root: Path, encoder_dir: Path, steps: int) -> Path:
    rows = "".join(json.dumps({"tokens": w, "tags": t}, ensure_ascii=False) + "\n" for w, t in SENTENCES)
    data = root / "ner.jsonl"
    data.write_text(rows, encoding="utf-8")
    cfg = {
        "encoder": {"model": str(encoder_dir), "max_length": MAX_LENGTH},
        "tasks": [{"name": "ner", "kind": "token", "train": str(data), "dev": str(data)}],
        # two evaluations in all: drawing the curves after each one would cost more than the steps
        "training": {"epochs": 2, "steps_per_epoch": steps // 2, "batch_size": 2, "lr": 5e-3, "seed": 3, "warmup_ratio": 0.0,
                     **TEST_TRAINING},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _prediction_firsts(encoder: Encoder, text: str) -> list[int]:
    """Each word's first sub-token as prediction finds it: the encoder's tokenisation of the text
    (what `predict` hands to the token kind's decode), words from `split_words`."""
    [(_, enc)] = list(encoder.batches([text], 1, offsets=True))
    return first_subtokens([tuple(o) for o in enc["offset_mapping"][0].tolist()], split_words(text))


TOKENIZER_CLASS = {"wordpiece": "BertTokenizer", "bytelevel-bpe": "RobertaTokenizer", "sentencepiece": "XLMRobertaTokenizer"}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_token_task_trains_and_predicts_entities_on_every_tokenizer_family(family: str, tmp_path: Path) -> None:
    encoder_dir = tmp_path / "encoder"
    family_encoder(family).save_backbone(encoder_dir)
    cfg = load_config(_write_config(tmp_path, encoder_dir, steps=80))
    result = train(cfg, tmp_path / "model", progress=False)
    assert result.dev["ner"]["entity_f1"] == 1.0
    model = load(tmp_path / "model")
    tokenizer = model.encoder.tokenizer
    assert type(tokenizer).__name__.startswith(TOKENIZER_CLASS[family])  # the family survived saving

    # The training path's alignment (collate: words joined by spaces, offsets) is the prediction
    # path's (split_words on the same text), index for index, and the distillation path's too.
    sources, specs = build_sources(cfg)
    examples = sources[0].splits["train"]
    batch = collate(examples, sources[0], specs, tokenizer, model.encoder.max_length)
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    for row, (ex, firsts) in enumerate(zip(examples, batch["firsts"])):
        assert [ex.text[s:e] for s, e in split_words(ex.text)] == ex.words  # the text splits back into its words
        assert firsts == _prediction_firsts(model.encoder, ex.text), ex.words
        ids = batch["inputs"]["input_ids"][row].tolist()
        assert all(f >= 0 and ids[f] not in special for f in firsts) and firsts == sorted(set(firsts))
        assert word_starts(tokenizer, [ex.text], model.encoder.max_length) == [firsts]

    # Raw text as written: "U.S." inside a sentence, a decimal point and a thousands comma, and the
    # Chinese as trained (one character per word, spaces between).
    raw = {
        "Anna lives in the U.S. now": [("Anna", "PER"), ("U.S.", "LOC")],
        "Bob Smith visited Paris on Monday": [("Bob Smith", "PER"), ("Paris", "LOC")],
        "e.g. Rome is 3.5 hours and 1,000 km away": [("Rome", "LOC")],
        join_words(SENTENCES[4][0])[0]: [("李 明", "PER"), ("北 京", "LOC")],
    }
    if family == "wordpiece":
        # WordPiece splits punctuation and Han characters off whatever the spacing, so the model sees
        # the trained pieces in text glued the usual way too. (Byte-level BPE and SentencePiece read
        # "now." differently from "now .": a tiny model trained from scratch on a few sentences has
        # not learnt those pieces, a pretrained one has.)
        raw.update({"Anna lives in the U.S. now.": [("Anna", "PER"), ("U.S.", "LOC")],
                    "Carla's e-mail came from New York.": [("Carla's", "PER"), ("New York", "LOC")],
                    "李明有一天上北京。": [("李明", "PER"), ("北京", "LOC")]})
    for (text, want), out in zip(raw.items(), model.predict(list(raw), embeddings=False)):
        entities = out["tasks"]["ner"]["entities"]
        assert [(e["text"], e["type"]) for e in entities] == want, (family, text, out["tasks"]["ner"]["tags"])
        for e in entities:
            assert text[e["start_char"]:e["end_char"]] == e["text"]


# -- byte-level BPE offsets that hold the space before a word ---------------------------------------
@pytest.mark.parametrize("trim_offsets,add_prefix_space", [(True, False), (False, False), (False, True), (True, True)])
def test_byte_level_pieces_are_found_whether_or_not_their_offsets_hold_the_space(trim_offsets: bool, add_prefix_space: bool) -> None:
    tok = _bpe_tokenizer(trim_offsets=trim_offsets, add_prefix_space=add_prefix_space)
    texts = [join_words(words)[0] for words, _ in SENTENCES[:4]] + ["Anna lives in Berlin.", "Bob Smith's e-mail came from the U.K. today!"]
    spaced = 0
    for text in texts:
        enc = tok(text, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        pieces = tok.convert_ids_to_tokens(enc["input_ids"])
        spaced += sum(e > s and text[s] == " " for s, e in offsets)
        words = split_words(text)
        firsts = first_subtokens(offsets, words)
        for (ws, we), f in zip(words, firsts):
            piece = pieces[f].lstrip("Ġ")  # the pieces of these ASCII texts read as their text
            assert piece and text[ws:we].startswith(piece), (text, text[ws:we], pieces[f])
        assert firsts == sorted(set(firsts)) and -1 not in firsts
    # untrimmed offsets do reach back over the space: the case the overlap rule is there for
    assert (spaced > 0) == (not trim_offsets)


# -- the 514 positions of RoBERTa and XLM-R, 512 tokens -------------------------------------------------
@pytest.mark.parametrize("family", ["bytelevel-bpe", "sentencepiece"])
def test_roberta_style_models_take_512_tokens_of_their_514_positions(family: str) -> None:
    enc = family_encoder(family, max_length=None)
    assert enc.backbone.config.max_position_embeddings == 514 and enc.tokenizer.model_max_length == 512
    assert enc.max_length == 256  # polyhead's default, under the limit
    long = " ".join(["Anna lives in Berlin and Bob Smith visited Paris"] * 80)
    full = family_encoder(family, max_length=512)
    assert len(full.tokenizer(long, truncation=True, max_length=512)["input_ids"]) == 512
    with pytest.warns(UserWarning, match="truncated"):
        assert full.encode([long]).shape == (1, 32)  # position ids up to 513 (the padding index is 1): in range
    with pytest.raises(PolyheadError, match="512 positions"):
        family_encoder(family, max_length=513)


# -- a word inside a sub-token begun by the word before -------------------------------------------------
def test_a_word_inside_the_piece_of_the_word_before_continues_its_entity_and_punctuation_does_not() -> None:
    from polyhead.kinds.token import Token

    spec = TaskSpec("ner", "token", ["O", "B-LOC", "I-LOC"])

    def probs(rows: list[str]) -> np.ndarray:
        return np.array([[0.9 if lab == r else 0.05 for lab in spec.labels] for r in rows])

    # raw "北京在。" read as <s> "北京" "在" "。" </s>: one piece holds two words
    out = Token.decode(spec, probs(["O", "B-LOC", "O", "O", "O"]), "北京在。", [(0, 0), (0, 2), (2, 3), (3, 4), (0, 0)])
    assert out["words"] == ["北", "京", "在", "。"] and out["tags"] == ["B-LOC", "I-LOC", "O", "O"]
    assert [(e["text"], e["start_char"], e["end_char"]) for e in out["entities"]] == [("北京", 0, 2)]
    # "Paris." read as "Par" "is.": the dot has no piece of its own and is not part of the entity
    out = Token.decode(spec, probs(["O", "B-LOC", "I-LOC", "O"]), "Paris.", [(0, 0), (0, 3), (3, 6), (0, 0)])
    assert out["tags"] == ["B-LOC", "O"] and [e["text"] for e in out["entities"]] == ["Paris"]
    # a word that truncation cut off stays O, even right after an entity
    out = Token.decode(spec, probs(["O", "B-LOC", "O"]), "Rome Paris", [(0, 0), (0, 4), (0, 0)])
    assert out["tags"] == ["B-LOC", "O"]


def test_byte_level_bpe_can_hold_a_whole_chinese_phrase_in_one_piece() -> None:
    """Why the rule above exists: a tokenizer trained on text without spaces merges characters, so
    words of one character each can share a piece; the detection sees it on a real tokenizer."""
    from polyhead.kinds.tagging import inside_earlier_subtoken

    tok = _bpe_tokenizer()
    text = "北京和上海是中国的城市。"
    offsets = [tuple(o) for o in tok(text, return_offsets_mapping=True)["offset_mapping"]]
    words = split_words(text)
    firsts = first_subtokens(offsets, words)
    inside = inside_earlier_subtoken(offsets, words, firsts)
    assert len(words) == len(text)
    assert any(inside) and all((f >= 0) != flag for f, flag in zip(firsts, inside))
    assert not inside[0] and firsts[-1] >= 0  # the first character and the full stop have their own pieces
