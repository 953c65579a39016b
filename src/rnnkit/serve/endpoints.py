"""The routes of each application's run, with their JSON schemas (served in /docs).

    text                POST /generate (streamed as NDJSON lines, or one JSON), sessions:
                        POST /sessions, POST /sessions/{id} (a chunk), GET, DELETE
    sentiment           POST /classify {"text"}
    sequence_classify   POST /classify {"sequences": [(T, D) arrays]}
    translate           POST /translate {"text", "beam"}
    forecast            POST /forecast {"horizon"?, "values"?} (horizon: default the run's own,
                        at most 12), POST /detect {"values", "level"}

A new application adds one function here, `ROUTES[<task name>] = add_<name>`: it receives the
app and the `Served` (predictor, lock, limits) and declares its request models with the
limits as schema bounds. Every model call is made under `served.lock`.
"""

import json
import math
from collections.abc import Callable
from typing import Annotated

import numpy as np
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .app import ClientError, Served
from .sessions import Sessions

Finite = Annotated[float, Field(allow_inf_nan=False)]
STRICT = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float)]


# ---- text: generation and streaming sessions ----------------------------------------------


def add_text(app: FastAPI, served: Served) -> None:
    import torch

    from ..models.decoding import check_sampling
    from ..models.language import generate

    lim, lm = served.limits, served.predictor
    sessions = Sessions(lim.max_sessions, lim.session_idle)

    class GenerateRequest(BaseModel):
        model_config = STRICT
        prompt: str = Field("", max_length=lim.max_length, description="Text to continue.")
        length: int = Field(200, ge=1, le=lim.max_generate, description="Tokens to generate.")
        temperature: Finite = Field(0.8, ge=0, le=100, description="0: greedy.")
        top_k: int | None = Field(None, ge=1, description="Sample among the k likeliest.")
        top_p: Finite | None = Field(None, gt=0, le=1, description="Nucleus sampling.")
        seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Same seed, same text.")
        stream: bool = Field(True, description='NDJSON lines {"text": piece} as produced.')

    class Generated(BaseModel):
        text: str
        tokens: int

    class Chunk(BaseModel):
        model_config = STRICT
        text: str = Field(..., min_length=1, max_length=lim.max_length)
        top: int = Field(5, ge=0, le=100, description="How many likeliest next tokens to list.")

    class ChunkRead(BaseModel):
        session: str
        tokens: int = Field(description="Tokens of this chunk the model read.")
        total_tokens: int
        nats_per_token: float | None = Field(
            description="Mean loss of this chunk's tokens, each predicted from all before it.")
        next: list[tuple[str, float]] = Field(description="Likeliest next tokens, probability.")

    @app.post("/generate", response_model=Generated, summary="Continue a prompt",
              responses={200: {"content": {"application/x-ndjson": {}}}})  # fmt: skip
    def generate_text(req: GenerateRequest):
        check_sampling(req.temperature, req.top_k, req.top_p)
        pieces = served.locked(generate(lm.model, lm.tokenizer, req.prompt, req.length,
                                        req.temperature, req.top_k, req.top_p, req.seed))
        prompt_ids = lm.tokenizer.encode(req.prompt, unknown="drop") if req.prompt else []
        first = next(pieces)  # errors surface here, before a 200 is sent
        if not req.stream:
            text = first + "".join(pieces)
            return Generated(text=text, tokens=req.length)

        def lines():
            yield json.dumps({"text": first}) + "\n"
            for piece in pieces:
                yield json.dumps({"text": piece}) + "\n"
            yield json.dumps({"done": True, "tokens": req.length,
                              "prompt_tokens": len(prompt_ids)}) + "\n"  # fmt: skip

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/sessions", status_code=201, summary="Open a streaming session")
    def open_session() -> dict:
        s = sessions.new()
        return {"session": s.id, "idle_timeout_s": lim.session_idle}

    @app.post("/sessions/{key}", response_model=ChunkRead, summary="Read the next chunk")
    def read_chunk(key: str, chunk: Chunk):
        s = sessions.get(key)
        ids = lm.tokenizer.encode(chunk.text, unknown="drop")
        if not ids:
            raise ClientError(422, "text: no token of the chunk is in the run's vocabulary")
        x = torch.tensor([ids])
        with served.lock, torch.no_grad():
            logits, state = lm.model(x, s.state)  # (1, T, V)
            logp = torch.log_softmax(logits[0].float(), -1)  # (T, V)
            nats = -logp[torch.arange(len(ids) - 1), x[0, 1:]].sum()
            if s.logits is not None:  # the first token was predicted by the last chunk
                nats = nats - torch.log_softmax(s.logits, -1)[ids[0]]
            scored = len(ids) - 1 + (s.logits is not None)
            s.state, s.logits = state, logits[0, -1].float()
        s.tokens, s.scored, s.nats = s.tokens + len(ids), s.scored + scored, s.nats + float(nats)
        probs = torch.softmax(s.logits, -1)
        top = torch.topk(probs, min(chunk.top, probs.numel()))
        return ChunkRead(session=s.id, tokens=len(ids), total_tokens=s.tokens,
                         nats_per_token=float(nats) / scored if scored else None,
                         next=[(lm.tokenizer.tokens[int(i)], float(p))
                               for p, i in zip(top.values, top.indices, strict=True)])  # fmt: skip

    @app.get("/sessions/{key}", summary="A session's totals")
    def session_info(key: str) -> dict:
        s = sessions.get(key)
        return {"session": s.id, "total_tokens": s.tokens,
                "nats_per_token": s.nats / s.scored if s.scored else None}  # fmt: skip

    @app.delete("/sessions/{key}", summary="End a session")
    def end_session(key: str) -> dict:
        sessions.end(key)
        return {"ended": key}


# ---- classifiers -------------------------------------------------------------------------


def add_sentiment(app: FastAPI, served: Served) -> None:
    lim = served.limits

    class ClassifyRequest(BaseModel):
        model_config = STRICT
        text: str = Field(..., min_length=1, max_length=lim.max_length)

    class Classified(BaseModel):
        prediction: str
        probability: float
        probabilities: dict[str, float]
        attention: list[tuple[str, float]]
        known_words: int
        words: int

    @app.post("/classify", response_model=Classified, summary="Classify a sentence")
    def classify(req: ClassifyRequest):
        with served.lock:
            return served.predictor.classify(req.text)


def add_sequence_classify(app: FastAPI, served: Served) -> None:
    lim, clf = served.limits, served.predictor
    Frame = Annotated[list[Finite], Field(min_length=1, max_length=1024)]

    class ClassifyRequest(BaseModel):
        model_config = STRICT
        sequences: list[Annotated[list[Frame], Field(min_length=1, max_length=lim.max_length)]]\
            = Field(..., min_length=1, max_length=lim.max_batch,
                    description="Sequences of frames (T, D): D values per time step.")

    class Label(BaseModel):
        label: str
        probability: float

    @app.post("/classify", response_model=list[Label], summary="Classify sequences")
    def classify(req: ClassifyRequest):
        seqs = [np.asarray(s, dtype=np.float64) for s in req.sequences]
        for i, s in enumerate(seqs):
            if s.ndim != 2:
                raise ClientError(422, f"sequences.{i}: every frame must have the same size")
        with served.lock:
            return [Label(label=c, probability=p) for c, p in clf.classify(seqs)]


# ---- translation ---------------------------------------------------------------------------


def add_translate(app: FastAPI, served: Served) -> None:
    from ..tasks.translate.options import MAX_BEAM

    lim = served.limits

    class TranslateRequest(BaseModel):
        model_config = STRICT
        text: str = Field(..., min_length=1, max_length=lim.max_length)
        beam: int = Field(4, ge=1, le=MAX_BEAM, description="Beam width (1: greedy).")

    class Translated(BaseModel):
        translation: str
        unknown: list[str]
        tokens: list[str]

    @app.post("/translate", response_model=Translated, summary="Translate a sentence")
    def translate(req: TranslateRequest):
        with served.lock:
            return served.predictor.translate(req.text, req.beam)


# ---- series: forecasts and anomalies -------------------------------------------------------


def add_forecast(app: FastAPI, served: Served) -> None:
    from ..tasks.anomaly import detect

    lim, fc = served.limits, served.predictor
    Values = Annotated[list[Finite], Field(min_length=1, max_length=lim.max_length)]

    class ForecastRequest(BaseModel):
        model_config = STRICT
        horizon: int | None = Field(None, ge=1, le=lim.max_generate, description="Steps "
                                    f"ahead; default: {fc.default_horizon()}, the run's own "
                                    "(a direct model forecasts at most its --horizon).")
        values: Values | None = Field(None, description="The recent series, oldest first "
                                      f"(at least {fc.window} values); default: the run's own.")

    class Forecast(BaseModel):
        mean: list[float]
        lower: list[float]
        upper: list[float]
        level: float

    class DetectRequest(BaseModel):
        model_config = STRICT
        values: Values
        level: float = Field(0.99, gt=0, lt=1, description="Prediction interval per point.")

    class Detected(BaseModel):
        anomalies: list[int] = Field(description="Indices of the flagged values.")
        mean: list[float | None]
        lower: list[float | None]
        upper: list[float | None]

    @app.post("/forecast", response_model=Forecast, summary="Forecast with intervals")
    def forecast(req: ForecastRequest):
        horizon = fc.default_horizon() if req.horizon is None else req.horizon
        with served.lock:
            if req.values is None:
                f = fc.future(horizon)
                mean, lo, hi = f.mean, f.lower, f.upper
            else:
                v = np.asarray(req.values, dtype=np.float64)
                mean, lo, hi = (a[0] for a in fc.forecast(v, np.array([len(v) - 1]), horizon))
        return Forecast(mean=mean.tolist(), lower=lo.tolist(), upper=hi.tolist(), level=fc.level)

    @app.post("/detect", response_model=Detected, summary="Flag values the model did not expect")
    def detect_anomalies(req: DetectRequest):
        with served.lock:
            d = detect(fc, np.asarray(req.values, dtype=np.float64), level=req.level)
        return Detected(anomalies=np.flatnonzero(d.flags).tolist(), mean=_nan_to_none(d.mean),
                        lower=_nan_to_none(d.lower), upper=_nan_to_none(d.upper))  # fmt: skip


ROUTES: dict[str, Callable[[FastAPI, Served], None]] = {
    "text": add_text,
    "sentiment": add_sentiment,
    "sequence_classify": add_sequence_classify,
    "translate": add_translate,
    "forecast": add_forecast,
}
