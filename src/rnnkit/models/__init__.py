"""Models: one file per input/output topology, each built from a frozen config.

    one_to_one    a single step (T = 1): the feed-forward baseline
    one_to_many   vector -> sequence, generated autoregressively
    many_to_one   sequence -> class / value / labels (last, mean, max or attention readout)
    many_to_many  an output per step (language model, tagger, forecaster)
    seq2seq       encoder-decoder over unaligned sequences, additive or dot attention
    captioner     image -> sequence: a CNN feature map read by an attention decoder
    decoding      greedy, sampling (temperature, top-k, top-p), beam search
    language      a language model at work: streaming generation, samples, stream evaluation

Every model has `.config` (a frozen dataclass from rnnkit.config), `Model.from_config(cfg)`,
and `loss(batch, state=None) -> StepOutput`. `build_model(cfg)` and `model_from_dict(d)` go
through the registry, so a run directory's config.json alone rebuilds any model.
Imports: rnnkit.config, rnnkit.cells, rnnkit.layers.

Example:
    >>> cfg = ManyToManyConfig(InputConfig("tokens", 65, 32), HeadConfig("softmax", 65))
    >>> model = build_model(cfg)
    >>> again = model_from_dict(model_to_dict(model))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..config import from_dict, to_dict
from .base import Batch, Head, InputLayer, StepOutput, build_rnn, detach_state
from .captioner import Captioner, CaptionerConfig
from .conv_rnn import ConvRNN
from .decoding import Decoded, beam_search, filter_logits, greedy, sample
from .many_to_many import ManyToMany
from .many_to_one import ManyToOne
from .one_to_many import OneToMany
from .one_to_one import OneToOne
from .seq2seq import Attention, Seq2Seq

MODELS: dict[str, type[nn.Module]] = {
    cls.kind: cls
    for cls in (OneToOne, OneToMany, ManyToOne, ManyToMany, Seq2Seq, Captioner, ConvRNN)
}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Add a model class (with `kind`, `config_class`, `from_config`) to the registry."""
    for attr in ("kind", "config_class", "from_config"):
        if not hasattr(cls, attr):
            raise TypeError(f"register_model: {cls.__name__} has no {attr!r}")
    MODELS[cls.kind] = cls
    return cls


def _class_for_config(config: Any) -> type[nn.Module]:
    for cls in MODELS.values():
        if type(config) is cls.config_class:
            return cls
    raise ValueError(f"build_model: no model takes a {type(config).__name__}")


def build_model(config: Any) -> nn.Module:
    """A fresh model (new weights) from its config dataclass."""
    return _class_for_config(config).from_config(config)


def model_to_dict(model: nn.Module) -> dict[str, Any]:
    """{"kind": ..., "config": {...}}: JSON-ready, enough for `model_from_dict`."""
    if getattr(model, "kind", None) not in MODELS:
        raise ValueError(f"model_to_dict: {type(model).__name__} is not a registered model")
    return {"kind": model.kind, "config": to_dict(model.config)}


def model_from_dict(data: dict[str, Any]) -> nn.Module:
    """Rebuild a model (fresh weights) from `model_to_dict` output."""
    if not isinstance(data, dict) or "kind" not in data or "config" not in data:
        raise ValueError("model_from_dict: expected {'kind': ..., 'config': {...}}")
    kind = data["kind"]
    if kind not in MODELS:
        raise ValueError(f"model_from_dict: unknown model kind {kind!r}; known: {sorted(MODELS)}")
    cls = MODELS[kind]
    return cls.from_config(from_dict(cls.config_class, data["config"]))


__all__ = [
    "MODELS",
    "Attention",
    "Batch",
    "Captioner",
    "CaptionerConfig",
    "Decoded",
    "Head",
    "InputLayer",
    "ManyToMany",
    "ManyToOne",
    "OneToMany",
    "OneToOne",
    "Seq2Seq",
    "beam_search",
    "filter_logits",
    "greedy",
    "sample",
    "StepOutput",
    "build_model",
    "build_rnn",
    "detach_state",
    "model_from_dict",
    "model_to_dict",
    "register_model",
]
