"""Reading a sentence-transformers folder exactly: each way real models' metadata differs (pooling
mode, no Normalize, another max_seq_length, Dense and LayerNorm modules, prompts), built from the
bundled all-MiniLM-L6-v2 folder, must give sentence-transformers' own vectors; saving keeps the
modules, and the exported folder loads in sentence-transformers to the same vectors."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from polyhead import MultiTaskModel
from polyhead.errors import PolyheadError
from polyhead.modeling.encoder import Encoder, embedded_default_path

st = pytest.importorskip("sentence_transformers")

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank this morning.",
    "Refund my order, it never arrived!",
    "What is the capital of France?",
    "a",
    "Transformers read text as tokens; pooling turns them into one vector per sentence, "
    "and that vector is what semantic search compares across millions of documents.",
]


def variant(root: Path, name: str, change: Callable[[Path], Any]) -> Path:
    """A copy of the bundled model folder (weights linked, not copied) with `change` applied."""
    src = embedded_default_path()
    assert src is not None
    folder = root / name
    folder.mkdir()
    for item in src.iterdir():
        if item.name == "model.safetensors":
            (folder / item.name).symlink_to(item)
        elif item.is_dir():
            shutil.copytree(item, folder / item.name)
        else:
            shutil.copy(item, folder / item.name)
    change(folder)
    return folder


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def pooling(mode: str | list[str], include_prompt: bool = True) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        write(folder / "1_Pooling" / "config.json", {"embedding_dimension": 384, "pooling_mode": mode, "include_prompt": include_prompt})
    return change


def modules(folder: Path, kinds: list[str]) -> None:
    entries = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    for kind in kinds:
        idx = len(entries)
        entries.append({"idx": idx, "name": str(idx), "path": f"{idx}_{kind}", "type": f"sentence_transformers.models.{kind}"})
    write(folder / "modules.json", entries)


def no_normalize(folder: Path) -> None:
    modules(folder, [])


def max_seq_length(folder: Path) -> None:
    write(folder / "sentence_bert_config.json", {"max_seq_length": 24, "do_lower_case": False})


def dense(out: int, activation: str = "torch.nn.modules.activation.Tanh", layer_norm: bool = False) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        kinds = ["Dense"] + (["LayerNorm"] if layer_norm else []) + ["Normalize"]
        modules(folder, kinds)
        gen = torch.Generator().manual_seed(0)
        write(folder / "2_Dense" / "config.json", {"in_features": 384, "out_features": out, "bias": True, "activation_function": activation})
        save_file({"linear.weight": torch.randn(out, 384, generator=gen) * 0.05, "linear.bias": torch.randn(out, generator=gen) * 0.05},
                  str(folder / "2_Dense" / "model.safetensors"))
        if layer_norm:
            write(folder / "3_LayerNorm" / "config.json", {"dimension": out})
            save_file({"norm.weight": 1 + 0.1 * torch.randn(out, generator=gen), "norm.bias": 0.1 * torch.randn(out, generator=gen)},
                      str(folder / "3_LayerNorm" / "model.safetensors"))
    return change


def prompts(default: str | None = "query", include_prompt: bool = True) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        write(folder / "config_sentence_transformers.json",
              {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": default})
        if not include_prompt:
            pooling("mean", include_prompt=False)(folder)
    return change


def lower_case(folder: Path) -> None:
    write(folder / "sentence_bert_config.json", {"max_seq_length": 256, "do_lower_case": True})


VARIANTS: dict[str, Callable[[Path], Any]] = {
    "cls": pooling("cls"),
    "max": pooling("max"),
    "mean_sqrt_len_tokens": pooling("mean_sqrt_len_tokens"),
    "weightedmean": pooling("weightedmean"),
    "lasttoken": pooling("lasttoken"),
    "cls+mean": pooling(["cls", "mean"]),
    "no_normalize": no_normalize,
    "max_seq_length_24": max_seq_length,
    "dense_384_128": dense(128),
    "dense_identity_layernorm": dense(96, "torch.nn.modules.linear.Identity", layer_norm=True),
    "default_prompt": prompts("query"),
    "prompt_excluded_from_pool": prompts("query", include_prompt=False),
    "do_lower_case": lower_case,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("st-variants")
    return {name: variant(root, name, change) for name, change in VARIANTS.items()}


def st_encode(folder: Path, texts: list[str], **kwargs: Any) -> np.ndarray:
    model = st.SentenceTransformer(str(folder), device="cpu")
    return model.encode(texts, batch_size=8, convert_to_numpy=True, **kwargs)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_encoder_gives_sentence_transformers_vectors_for_each_kind_of_folder(folders: dict[str, Path], name: str) -> None:
    folder = folders[name]
    texts = TEXTS + ["UPPER Case Words To Lower"] if name == "do_lower_case" else TEXTS
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".* given; ")  # nothing given explicitly: no override warning
        mine = Encoder(folder, device="cpu").encode(texts, batch_size=3)
    theirs = st_encode(folder, texts)
    assert mine.shape == theirs.shape
    np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_the_differences_are_real(folders: dict[str, Path]) -> None:
    """The variants change the vectors (else the test above would pass with the old encoder)."""
    base = Encoder(device="cpu").encode(TEXTS)
    for name in ("cls", "max", "no_normalize", "max_seq_length_24", "default_prompt", "weightedmean", "lasttoken"):
        other = Encoder(folders[name], device="cpu").encode(TEXTS)
        assert np.abs(other - base).max() > 1e-3, name


@pytest.mark.parametrize("name", ["default_prompt", "prompt_excluded_from_pool"])
def test_prompt_names_and_free_prompts_match_sentence_transformers(folders: dict[str, Path], name: str) -> None:
    enc = Encoder(folders[name], device="cpu")
    for kwargs in ({"prompt_name": "passage"}, {"prompt": "Represent this sentence: "}):
        np.testing.assert_allclose(enc.encode(TEXTS, **kwargs), st_encode(folders[name], TEXTS, **kwargs), atol=1e-5)
    with pytest.raises(PolyheadError, match="unknown prompt name 'nope'.*query, passage"):
        enc.encode(TEXTS, prompt_name="nope")
    with pytest.raises(PolyheadError, match="either prompt or prompt_name"):
        enc.encode(TEXTS, prompt="x", prompt_name="query")


def test_explicit_arguments_win_over_the_folder_and_say_so(folders: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match=r"pooling='mean' given; .*says 'cls'"):
        enc = Encoder(folders["cls"], pooling="mean", device="cpu")
    np.testing.assert_allclose(enc.encode(TEXTS), Encoder(device="cpu").encode(TEXTS), atol=1e-6)
    with pytest.warns(UserWarning, match="max_length=64 given"):
        assert Encoder(folders["max_seq_length_24"], max_length=64, device="cpu").max_length == 64
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".* given; ")  # the same value as the folder's is no override
        assert Encoder(folders["cls"], pooling="cls", device="cpu").pooling.mode == "cls"


def test_a_plain_hugging_face_folder_gets_polyheads_defaults(tmp_path: Path) -> None:
    plain = variant(tmp_path, "plain", lambda f: [p.unlink() if p.is_file() else shutil.rmtree(p)
                                                  for p in f.iterdir() if p.name in ("modules.json", "1_Pooling", "sentence_bert_config.json", "config_sentence_transformers.json")])
    enc = Encoder(plain, device="cpu")
    assert (enc.pooling.mode, enc.normalize, enc.max_length, enc.prompts) == ("mean", True, 256, {})


@pytest.mark.parametrize("change, message", [
    (lambda f: modules(f, ["Dropout"]), r"module sentence_transformers\.models\.Dropout \(2_Dropout\) is not supported"),
    (lambda f: write(f / "modules.json", [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                                          {"idx": 1, "path": "1_Pooling", "type": "my_package.SpecialPooling"}]),
     r"module my_package\.SpecialPooling \(1_Pooling\) is not supported"),
    (lambda f: (dense(128)(f), write(f / "2_Dense" / "config.json", {"in_features": 256, "out_features": 128})),
     "takes 256-dimensional input but the module before it gives 384"),
    (lambda f: (dense(128)(f), (f / "2_Dense" / "model.safetensors").unlink(), (f / "2_Dense" / "pytorch_model.bin").write_bytes(b"x")),
     "only pickled pytorch_model.bin weights"),
    (lambda f: (dense(128)(f), write(f / "2_Dense" / "config.json", {"in_features": 384, "out_features": 128, "activation_function": "evil.module.Run"})),
     "activation 'evil.module.Run' is not a torch.nn module"),
    (lambda f: write(f / "config_sentence_transformers.json", {"prompts": {"query": "q: "}, "default_prompt_name": "doc"}),
     "default_prompt_name 'doc' is not one of its prompts"),
    (lambda f: write(f / "1_Pooling" / "config.json", {"pooling_mode": "median"}), "unknown pooling 'median'"),
    (lambda f: (f / "modules.json").write_text("{not json"), r"modules\.json is not valid JSON"),
])
def test_a_folder_polyhead_cannot_run_exactly_is_a_one_line_error(tmp_path: Path, change: Callable, message: str) -> None:
    folder = variant(tmp_path, "bad", change)
    with pytest.raises(PolyheadError, match=message) as err:
        Encoder(folder, device="cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["dense_identity_layernorm", "prompt_excluded_from_pool", "cls+mean", "do_lower_case", "no_normalize"])
def test_saving_keeps_the_modules_and_the_export_loads_in_sentence_transformers(folders: dict[str, Path], tmp_path: Path, name: str) -> None:
    model = MultiTaskModel(Encoder(folders[name], device="cpu"), [{"name": "topic", "kind": "classification", "labels": ["a", "b"]}])
    with torch.no_grad():  # trained Dense weights must travel too, not the folder's originals
        for p in model.encoder.projection.parameters():
            p.add_(0.01)
    before = model.encode(TEXTS)
    model.save(tmp_path / "model")
    loaded = MultiTaskModel.load(tmp_path / "model", device="cpu")
    np.testing.assert_allclose(loaded.encode(TEXTS), before, atol=1e-6)
    assert loaded.encoder.config_dict() == model.encoder.config_dict()
    exported = model.export_sentence_transformers(tmp_path / "st")
    np.testing.assert_allclose(st_encode(exported, TEXTS), before, atol=1e-5)
    if model.encoder.prompts:
        np.testing.assert_allclose(st_encode(exported, TEXTS, prompt_name="passage"), model.encode(TEXTS, prompt_name="passage"), atol=1e-5)


def test_a_dense_module_trains_with_the_encoder_freezes_with_it_and_is_saved(tmp_path: Path) -> None:
    """A Dense layer after pooling is part of the encoder: it trains at the encoder's rate, stays put
    with freeze.encoder, and the saved model (and its sentence-transformers export) carries it."""
    from conftest import make_tiny_encoder
    from safetensors.torch import load_file
    from train_helpers import write_config

    from polyhead.modeling.st_modules import Dense, FolderSettings
    from polyhead.training.config import load_config
    from polyhead.training.loop import train

    tiny = make_tiny_encoder()
    settings = FolderSettings(source="test", pooling=("mean",), max_length=32, modules=[Dense(32, 8)], normalize=True)
    Encoder(device="cpu", backbone=tiny.backbone, tokenizer=tiny.tokenizer, settings=settings).save_backbone(tmp_path / "tiny-encoder")
    original = load_file(str(tmp_path / "tiny-encoder" / "2_Dense" / "model.safetensors"))
    config = write_config(tmp_path, epochs=1)  # names tmp_path/tiny-encoder, already written above
    for name, freeze in (("trained", "false"), ("frozen", "true")):
        cfg = load_config(config, ["encoder.max_length=null", f"freeze.encoder={freeze}"])
        train(cfg, tmp_path / name, progress=False)
        model = load_file(str(tmp_path / name / "encoder" / "2_Dense" / "model.safetensors"))
        moved = max(float((model[k] - original[k]).abs().max()) for k in original)
        assert (moved > 0) == (freeze == "false"), (name, moved)
        vectors = MultiTaskModel.load(tmp_path / name, device="cpu").encode(TEXTS)
        assert vectors.shape == (len(TEXTS), 8)
        np.testing.assert_allclose(st_encode(tmp_path / name / "encoder", TEXTS), vectors, atol=1e-5)
