"""The Hugging Face Hub: loading by repository name (from a local snapshot laid out as
huggingface_hub caches it: no hub is reachable here) and pushing (the upload call replaced, so
the test sees exactly which files would go)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polyhead import MultiTaskModel, PolyheadError, load
from polyhead.modeling.encoder import Encoder, embedded_default_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TEXTS = ["Anna flew from Berlin to Paris.", "What is the capital of France?"]


def cached_repo(cache: Path, repo_id: str, source: Path) -> None:
    """`source`'s files as huggingface_hub's cache holds a snapshot of `repo_id` at COMMIT."""
    org, name = repo_id.split("/")
    repo = cache / f"models--{org}--{name}"
    snapshot = repo / "snapshots" / COMMIT
    for item in source.rglob("*"):
        if item.is_file():
            target = snapshot / item.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(item.resolve())
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def test_a_hub_encoder_is_read_from_the_hugging_face_cache_with_its_sentence_transformers_config(tmp_path: Path) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # nothing may reach the network here
    default = embedded_default_path()
    assert default is not None
    source = tmp_path / "src"
    shutil.copytree(default, source, symlinks=True)
    (source / "1_Pooling" / "config.json").write_text('{"embedding_dimension": 384, "pooling_mode": "cls"}')
    cached_repo(tmp_path / "cache", "someone/mini-cls", source)
    enc = Encoder("someone/mini-cls", cache_dir=tmp_path / "cache", device="cpu")
    assert enc.name_or_path == "someone/mini-cls" and enc.pooling.mode == "cls"
    np.testing.assert_allclose(enc.encode(TEXTS), Encoder(source, device="cpu").encode(TEXTS), atol=1e-6)
    assert np.abs(enc.encode(TEXTS) - Encoder(device="cpu").encode(TEXTS)).max() > 1e-3  # cls, not the default mean


def test_a_repository_that_cannot_be_read_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PolyheadError, match=r"'nobody/nothing' is not a local folder, and the Hugging Face Hub copy could not be read") as err:
        Encoder("nobody/nothing", cache_dir=tmp_path, device="cpu")
    assert "\n" not in str(err.value)


def test_from_pretrained_loads_a_polyhead_model_from_the_hub_cache(tmp_path: Path, tiny_model_dir: Path) -> None:
    cached_repo(tmp_path / "cache", "team/support-model", tiny_model_dir)
    hub = MultiTaskModel.from_pretrained("team/support-model", cache_dir=tmp_path / "cache", device="cpu")
    local = load(tiny_model_dir, device="cpu")
    assert hub.tasks.keys() == local.tasks.keys()
    got, want = hub.predict(TEXTS), local.predict(TEXTS)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g["embedding"], w["embedding"], atol=1e-6)
        assert g["tasks"]["topic"]["label"] == w["tasks"]["topic"]["label"]
    assert MultiTaskModel.from_pretrained(tiny_model_dir, device="cpu").tasks.keys() == local.tasks.keys()  # a folder too


def test_from_pretrained_on_a_plain_encoder_repository_says_what_it_is(tmp_path: Path) -> None:
    default = embedded_default_path()
    assert default is not None
    cached_repo(tmp_path / "cache", "someone/plain", default)
    with pytest.raises(PolyheadError, match=r"not a polyhead model \(no polyhead.json\); for a plain encoder use Encoder"):
        MultiTaskModel.from_pretrained("someone/plain", cache_dir=tmp_path / "cache")


class FakeApi:
    """huggingface_hub.HfApi with the network calls replaced: it records what would be uploaded."""

    calls: list[tuple[str, Any]] = []
    fail: Exception | None = None

    def __init__(self, token: Any = None) -> None:
        self.token = token

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        FakeApi.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id: str, folder_path: str, **kwargs: Any) -> str:
        if FakeApi.fail is not None:
            raise FakeApi.fail
        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file())
        FakeApi.calls.append(("upload_folder", {"repo_id": repo_id, "files": files, **kwargs}))
        return "commit-info"


def test_push_to_hub_uploads_exactly_the_saved_model(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    FakeApi.calls, FakeApi.fail = [], None
    model = load(tiny_model_dir, device="cpu")
    assert model.push_to_hub("team/support-model", private=True, token="hf_x") == "commit-info"
    (create, args), (upload, up) = FakeApi.calls
    assert (create, args["repo_id"], args["private"], args["exist_ok"]) == ("create_repo", "team/support-model", True, True)
    saved = model.save_pretrained(tmp_path / "saved")
    want = sorted(str(p.relative_to(saved)) for p in saved.rglob("*") if p.is_file())
    assert up["files"] == want  # what save() writes, nothing more
    assert {"polyhead.json", "README.md", "encoder/model.safetensors", "encoder/modules.json", "heads/topic.safetensors"} <= set(up["files"])
    assert not [f for f in up["files"] if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    assert up["commit_message"] == "Upload polyhead model"

    FakeApi.fail = RuntimeError("401 Client Error: Unauthorized\nmore detail")
    with pytest.raises(PolyheadError, match=r"could not upload to the Hub repository 'team/x': 401 Client Error: Unauthorized$"):
        model.push_to_hub("team/x")
