"""benchmarks/conll_seen.py: entities split into seen / unseen mentions, scored as conlleval would."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from script_loader import load_script

def _module():
    return load_script("benchmarks/conll_seen.py")


def test_mentions_split_into_seen_and_unseen_and_add_up_to_the_whole() -> None:
    cs = _module()
    train = [SimpleNamespace(words=["Peter", "Blackburn", "in", "Bonn"], labels={"conll2003": ["B-PER", "I-PER", "O", "B-LOC"]})]
    seen = cs.train_mentions(train)
    assert seen == {"Peter Blackburn", "Bonn"}
    words = [["Bonn", "beat", "Leeds", "United"], ["Peter", "Blackburn", "left"]]
    gold = [["B-ORG", "O", "B-ORG", "I-ORG"], ["B-PER", "I-PER", "O"]]
    pred = [["B-LOC", "O", "B-ORG", "I-ORG"], ["B-PER", "I-PER", "O"]]
    rows = cs.group_rows(words, gold, pred, seen)
    # "Bonn" is seen (as LOC in train; the type does not matter), "Leeds United" is not.
    assert rows["seen"].tolist() == [[0, 1, 1], [1, 1, 1]]  # Bonn: wrong type; Peter Blackburn: right
    assert rows["unseen"].tolist() == [[1, 1, 1], [0, 0, 0]]
    assert np.array_equal(rows["seen"] + rows["unseen"], rows["all"])
    f1 = cs.metric("conll2003", rows["seen"].sum(0), 2)
    assert f1 == 0.5  # 1 true positive, 2 predicted, 2 gold
