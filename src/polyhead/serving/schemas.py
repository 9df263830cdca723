"""The request bodies, as pydantic models (what FastAPI validates and /openapi.json describes).

Built by build_schemas() rather than at import time, so `import polyhead.serving` works without
pydantic (the `serve` extra) and `polyhead serve` without it fails with a one-line message.
"""
# No `from __future__ import annotations`: pydantic reads these annotations at runtime, and the
# models are built inside a function whose locals (StrictStr, ...) string annotations would miss.
from types import SimpleNamespace
from typing import Any, Optional


def check_unicode(value: str) -> str:
    """value itself, or ValueError if it holds a lone surrogate (a JSON escape such as \\ud800 alone).

    JSON allows such escapes, but they are not Unicode text: the tokenizer refuses them and
    they cannot be written back out as UTF-8, so they are a 422 here rather than a 500 later.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"holds a lone UTF-16 surrogate (\\u{ord(value[exc.start]):04x} at character {exc.start}), which is not valid Unicode text"
        ) from None
    return value


# What /v1/embeddings' `input` and /embed's `inputs` accept (a string or a non-empty list of strings).
TEXT_OR_TEXTS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}


def text_or_texts(v: Any) -> list[str]:
    """A string or a non-empty list of strings, as a list; ValueError (a 422) for anything else."""
    if isinstance(v, str):
        return [check_unicode(v)]
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        for i, x in enumerate(v):
            try:
                check_unicode(x)
            except ValueError as exc:
                raise ValueError(f"element {i} {exc}") from None
        return v
    if isinstance(v, list) and not v:
        raise ValueError("must hold at least one string")
    if isinstance(v, list) and all(isinstance(x, int) or (isinstance(x, list) and all(isinstance(y, int) for y in x)) for x in v):
        raise ValueError("token ids are not supported: send text, as a string or a list of strings")
    raise ValueError("must be a string or a list of strings")


def build_schemas() -> SimpleNamespace:
    """The pydantic request models: EmbeddingsRequest, PredictRequest, SimilarityRequest, RerankRequest, EmbedRequest."""
    from typing import Annotated

    from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

    # Every string the server reads, tokenizes or echoes back.
    Text = Annotated[StrictStr, AfterValidator(check_unicode)]

    class EmbeddingsRequest(BaseModel):
        # OpenAI clients send fields this server does not use (user, future options): accepted.
        model_config = ConfigDict(extra="allow")
        # Validated by _input (token ids get their own message); the schema says what is accepted.
        input: Any = Field(
            ...,
            description="a string or a list of strings",
            json_schema_extra=TEXT_OR_TEXTS_SCHEMA,
        )
        model: Optional[Text] = None
        prompt_name: Optional[Text] = Field(None, description="one of the model's prompts (GET /info lists them); default: its default prompt")
        encoding_format: Optional[str] = "float"
        dimensions: Optional[int] = None
        user: Optional[str] = None

        @field_validator("input")
        @classmethod
        def _input(cls, v: Any) -> list[str]:
            return text_or_texts(v)

        @field_validator("encoding_format")
        @classmethod
        def _format(cls, v: Optional[str]) -> str:
            if v in (None, "float", "base64"):
                return v or "float"
            raise ValueError("must be 'float' or 'base64'")

    class PredictRequest(BaseModel):
        # Typos ("task" for "tasks") must fail loudly rather than silently run every head.
        model_config = ConfigDict(extra="forbid")
        texts: list[Text] = Field(..., min_length=1, description="the texts to run every (or each chosen) head on")
        tasks: Optional[list[Text]] = Field(None, description="head names; default: every head that predicts per text")
        embeddings: StrictBool = Field(True, description="include each text's sentence embedding")

    class SimilarityRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[tuple[Text, Text]] = Field(..., min_length=1, description="[[text_a, text_b], ...]")

    class PairsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        pairs: list[tuple[Text, Text]] = Field(..., min_length=1, description="[[text_a, text_b], ...]")
        tasks: Optional[list[Text]] = Field(None, description="pair head names; default: every pair head")

    class RerankRequest(BaseModel):
        # Cohere / text-embeddings-inference style reranking; typos fail loudly.
        model_config = ConfigDict(extra="forbid")
        query: Text = Field(..., description="the text the documents are ranked against")
        documents: list[Text] = Field(..., min_length=1, description="the texts to rank")
        top_n: Optional[StrictInt] = Field(None, ge=1, description="return only the best N results (default: all)")
        return_documents: StrictBool = Field(False, description="include each document's text as document.text")
        model: Optional[Text] = Field(None, description="echoed back (Cohere clients send it); the server has one model")

    class EmbedRequest(BaseModel):
        # text-embeddings-inference's POST /embed.
        model_config = ConfigDict(extra="forbid")
        inputs: Any = Field(..., description="a string or a list of strings", json_schema_extra=TEXT_OR_TEXTS_SCHEMA)
        normalize: StrictBool = Field(True, description="scale each vector to unit length (TEI's default)")
        truncate: Optional[StrictBool] = Field(None, description="accepted for TEI clients; texts are always truncated at the model's max length")
        prompt_name: Optional[Text] = Field(None, description="one of the model's prompts (GET /info lists them); default: its default prompt")

        @field_validator("inputs")
        @classmethod
        def _inputs(cls, v: Any) -> list[str]:
            return text_or_texts(v)

    class ErrorDetail(BaseModel):
        message: str = Field(..., description="one line: what was wrong and what to do")
        type: str = Field(..., description="invalid_request_error, authentication_error, server_error, ...")
        param: Optional[str] = Field(None, description="the request field at fault, e.g. texts[3]")
        code: Optional[str] = Field(None, description="a stable machine-readable reason, e.g. limit_exceeded")

    class ErrorResponse(BaseModel):
        """The one shape of every error answer (OpenAI's)."""

        error: ErrorDetail

    def errors(*statuses: int) -> dict[int, dict[str, Any]]:
        """OpenAPI `responses` for a route: each status answers with ErrorResponse."""
        return {status: {"model": ErrorResponse, "description": ERROR_STATUSES[status]} for status in statuses}

    return SimpleNamespace(
        EmbeddingsRequest=EmbeddingsRequest, PredictRequest=PredictRequest, SimilarityRequest=SimilarityRequest,
        PairsRequest=PairsRequest, RerankRequest=RerankRequest, EmbedRequest=EmbedRequest, ErrorResponse=ErrorResponse, errors=errors,
    )


# What each error status means on this server (documented in /openapi.json and docs/serving.md).
ERROR_STATUSES = {
    400: "malformed body (not JSON, not UTF-8)",
    401: "missing or wrong API key",
    404: "the model folder has no such training file",
    413: "body, text count or text length over the limit",
    415: "body is not application/json",
    422: "valid JSON that breaks the schema or names an unknown task",
    503: "the batching worker is not running",
}
