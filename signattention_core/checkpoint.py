"""Run folders: checkpoint save and load, and import of the study's Lightning checkpoints.

A run folder ``runs/NAME/`` contains:

- ``config.json``: ``TrainConfig.to_dict()``.
- ``vocab.json``: the vocabulary as ``Tokenizer.save`` writes it.
- ``checkpoint.pt`` (latest epoch) and ``best.pt`` (best validation loss): dicts
  of tensors and plain Python values with the keys ``state_dict``, ``epoch``,
  ``config``, ``tokens``, ``n_features``, ``package_version`` and ``model_args``
  (the :class:`SignTransformer` constructor arguments), plus any extra keys the
  trainer adds. They load with ``torch.load(path, weights_only=True)``.
- ``metrics.csv``, ``metrics.json``, ``translations.csv``: written by training
  and evaluation.
- ``corpus.json``: ``{"name": ..., "path": ...}`` of the training corpus.

:func:`import_study_checkpoint` converts a SignAttention study checkpoint, a
PyTorch Lightning file whose ``state_dict`` keys carry the prefix ``model.`` and
whose ``hyper_parameters`` pickle the config dict and a tokenizer object, into
such a folder without running any code stored in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import types
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from signattention_core import __version__
from signattention_core.device import choose_device
from signattention_core.model import DEFAULT_MAX_LEN, SignTransformer, sinusoidal_table

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "LoadedRun",
    "PickledObject",
    "build_model",
    "choose_device",
    "import_study_checkpoint",
    "infer_model_args",
    "load_checkpoint",
    "load_run",
    "read_study_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FILES = {"best": "best.pt", "last": "checkpoint.pt"}
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
CORPUS_FILE = "corpus.json"
IMPORT_FILE = "import.json"

# keys every checkpoint written by save_checkpoint contains; extra keys may not reuse them
RESERVED_KEYS = (
    "state_dict", "epoch", "config", "tokens", "n_features", "package_version", "model_args"
)

# nn.Transformer's default head count, which the study's model used because it never set one.
# The weights cannot reveal it, because every head count gives the same parameter shapes.
STUDY_DEFAULT_NHEAD = 8

# study config keys that must agree with the architecture read from the weights
_ARCHITECTURE_KEYS = ("d_model", "num_encoder_layers", "num_decoder_layers", "dim_feedforward")


class CheckpointError(ValueError):
    """Invalid or inconsistent checkpoint or run folder; the message names the file and the fix."""


@dataclass
class LoadedRun:
    """A trained model with everything needed to feed it and read its output."""

    # the model in eval mode, on the requested device
    model: SignTransformer
    # training configuration (signattention_core.config.TrainConfig)
    config: Any
    # output vocabulary (signattention_core.tokenizer.Tokenizer)
    tokenizer: Any
    # pose-to-feature settings (signattention_core.transforms.TransformConfig)
    transform: Any
    # run_dir, checkpoint, epoch, package_version, n_features, device, corpus and any extra
    # checkpoint keys whose values hold no tensors
    info: dict[str, Any]


# ---------------------------------------------------------------- save and load


def save_checkpoint(
    path: str | Path,
    model: SignTransformer,
    config: Any,
    tokenizer: Any,
    epoch: int,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the model, config and vocabulary to ``path`` atomically.

    Args:
        path: destination file, usually ``<run>/checkpoint.pt`` or ``<run>/best.pt``.
        model: the model; its weights are copied to the CPU.
        config: a ``TrainConfig`` (anything with ``to_dict()``) or a plain mapping.
        tokenizer: a ``Tokenizer`` (anything with a ``tokens`` list) or the token list.
        epoch: number of completed epochs.
        extra: more top-level keys, such as optimizer state or metrics. Values must be
            tensors or plain Python values, so that the file loads with ``weights_only=True``.

    Raises:
        CheckpointError: when the vocabulary size or the config disagrees with the model,
            or ``extra`` reuses a reserved key or contains another type of value.
    """
    path = Path(path)
    config_dict = _config_to_dict(config)
    tokens = list(tokenizer.tokens) if hasattr(tokenizer, "tokens") else list(tokenizer)
    model_args = dict(model.model_args)
    if len(tokens) != model_args["vocab_size"]:
        raise CheckpointError(
            f"cannot save {path}: the vocabulary has {len(tokens)} tokens but the model's "
            f"generator has {model_args['vocab_size']} outputs; pass the tokenizer the model was built with"
        )
    mismatched = [
        f"{key} {config_dict[key]} in the config but {model_args[key]} in the model"
        for key in ("nhead", *_ARCHITECTURE_KEYS)
        if key in config_dict and config_dict[key] != model_args[key]
    ]
    if mismatched:
        raise CheckpointError(f"cannot save {path}: " + "; ".join(mismatched))

    payload: dict[str, Any] = {
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "epoch": int(epoch),
        "config": config_dict,
        "tokens": tokens,
        "n_features": int(model_args["n_features"]),
        "package_version": __version__,
        "model_args": model_args,
    }
    for key, value in (extra or {}).items():
        if key in RESERVED_KEYS:
            raise CheckpointError(
                f"cannot save {path}: extra key {key!r} is reserved; reserved keys: {', '.join(RESERVED_KEYS)}"
            )
        _check_plain(value, f"extra[{key!r}]", path)
        payload[key] = value
    _check_plain(config_dict, "config", path)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        CheckpointError: when the file is missing, contains pickled objects, or lacks keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _weights_only_reason(error)
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint file ({reason}); it is damaged or in another "
                "format, so restore it or train the run again"
            ) from error
        raise CheckpointError(
            f"{path} is not a checkpoint of this package: it contains pickled Python objects "
            f"that weights_only loading rejects ({reason}). Convert a study Lightning checkpoint with "
            f"`python train.py import-checkpoint {path} --out runs/NAME`"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        detail = str(error) or "the file ends early"
        raise CheckpointError(
            f"{path} could not be read as a PyTorch file ({type(error).__name__}: {detail}); "
            "it is damaged or truncated, so restore it or train the run again"
        ) from error

    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} contains a {type(payload).__name__}, not a checkpoint dict")
    missing = [key for key in ("state_dict", "config", "tokens") if key not in payload]
    if missing:
        raise CheckpointError(
            f"{path} lacks the checkpoint keys {missing}; it was not written by save_checkpoint"
        )
    return payload


def _weights_only_reason(error: pickle.UnpicklingError) -> str:
    """Return the reason line of torch's weights_only error, without its advice to turn the check off."""
    lines = [line.strip() for line in str(error).splitlines()]
    skipped = ("Weights only load failed", "Check the documentation")
    kept = [
        line.split("WeightsUnpickler error:", 1)[-1].strip()
        for line in lines
        if line and not line.startswith(skipped)
    ]
    return " ".join(line for line in kept if line) or type(error).__name__


def build_model(payload: Mapping[str, Any], source: str | Path = "checkpoint") -> SignTransformer:
    """Build a model from a checkpoint payload and load its weights, in eval mode, on the CPU.

    The constructor arguments come from ``model_args`` or, when absent, from the
    weight shapes and the config.
    """
    state_dict = payload["state_dict"]
    if "model_args" in payload:
        args = dict(payload["model_args"])
    else:
        config = payload.get("config", {})
        args = infer_model_args(
            state_dict,
            nhead=int(config.get("nhead", STUDY_DEFAULT_NHEAD)),
            dropout=float(config.get("dropout", 0.2)),
        )
    try:
        model = SignTransformer(**args)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: invalid model arguments {args}: {error}") from error
    _load_weights(model, state_dict, source)
    return model.eval()


def load_run(
    run_dir: str | Path, device: str | torch.device | None = "cpu", which: str = "best"
) -> LoadedRun:
    """Load a run folder's model, config, vocabulary and transform settings.

    Args:
        run_dir: the run folder.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` or None (auto).
        which: ``"best"`` reads best.pt, ``"last"`` reads checkpoint.pt.

    Raises:
        CheckpointError: when a file is missing or the files disagree with each other.
    """
    from signattention_core.config import ConfigError, TrainConfig
    from signattention_core.tokenizer import Tokenizer
    from signattention_core.transforms import n_features

    run_dir = Path(run_dir)
    if which not in CHECKPOINT_FILES:
        raise CheckpointError(f"invalid checkpoint choice {which!r}; accepted: {', '.join(CHECKPOINT_FILES)}")
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder not found: {run_dir}")
    path = run_dir / CHECKPOINT_FILES[which]
    if not path.is_file():
        present = [key for key, name in CHECKPOINT_FILES.items() if (run_dir / name).is_file()]
        if present:
            choices = " or ".join(f"which={key!r} (--checkpoint {key} on the command line)" for key in present)
            hint = f"; choose {choices} to load what this folder has"
        else:
            hint = "; train the run first or import a study checkpoint"
        raise CheckpointError(f"checkpoint not found: {path}{hint}")

    target = choose_device(device)
    payload = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(payload["config"], source=f"{path} config")
    except ConfigError as error:
        raise CheckpointError(str(error)) from error
    try:
        tokenizer = Tokenizer(payload["tokens"])
    except ValueError as error:
        raise CheckpointError(f"{path}: invalid vocabulary: {error}") from error
    _check_vocab_file(run_dir / VOCAB_FILE, tokenizer.tokens)

    transform = config.transform_config()
    expected = n_features(transform)
    stored = int(payload.get("n_features", expected))
    if stored != expected:
        raise CheckpointError(
            f"{path}: the model takes {stored} features per position but the config's "
            f"transform gives {expected}; the checkpoint and its config do not belong together"
        )

    model = build_model(payload, source=path).to(target)
    info: dict[str, Any] = {
        "run_dir": str(run_dir),
        "checkpoint": str(path),
        "epoch": payload.get("epoch"),
        "package_version": payload.get("package_version"),
        "n_features": stored,
        "device": str(target),
        "corpus": _read_corpus_reference(run_dir / CORPUS_FILE),
    }
    for key, value in payload.items():
        if key not in RESERVED_KEYS and not _contains_tensor(value):
            info[key] = value
    logger.info("loaded %s (epoch %s) on %s", path, info["epoch"], target)
    return LoadedRun(model=model, config=config, tokenizer=tokenizer, transform=transform, info=info)


def infer_model_args(
    state_dict: Mapping[str, torch.Tensor], nhead: int, dropout: float
) -> dict[str, Any]:
    """Read the SignTransformer constructor arguments from weight shapes.

    The head count and dropout leave no trace in the weights, so the caller gives them.
    ``max_len`` is the longer of the two positional encoding tables.

    Raises:
        CheckpointError: when a weight the architecture needs is missing.
    """
    required = (
        "src_keyp_emb.conv1d_1.weight",
        "tgt_tok_emb.embedding.weight",
        "generator.weight",
        "src_pe.pe",
        "tgt_pe.pe",
    )
    missing = [key for key in required if key not in state_dict]
    if missing:
        raise CheckpointError(f"the state_dict lacks {missing}; it does not hold a SignTransformer")

    def count_layers(stack: str) -> int:
        pattern = re.compile(rf"^transformer\.{stack}\.layers\.(\d+)\.")
        indices = {int(match.group(1)) for key in state_dict if (match := pattern.match(key))}
        return max(indices) + 1 if indices else 0

    feedforward_key = "transformer.encoder.layers.0.linear1.weight"
    if feedforward_key not in state_dict:
        feedforward_key = "transformer.decoder.layers.0.linear1.weight"
    if feedforward_key not in state_dict:
        raise CheckpointError("the state_dict has no encoder or decoder layers")

    return {
        "n_features": int(state_dict["src_keyp_emb.conv1d_1.weight"].shape[1]),
        "vocab_size": int(state_dict["generator.weight"].shape[0]),
        "d_model": int(state_dict["tgt_tok_emb.embedding.weight"].shape[1]),
        "nhead": int(nhead),
        "num_encoder_layers": count_layers("encoder"),
        "num_decoder_layers": count_layers("decoder"),
        "dim_feedforward": int(state_dict[feedforward_key].shape[0]),
        "dropout": float(dropout),
        "max_len": int(max(state_dict["src_pe.pe"].shape[1], state_dict["tgt_pe.pe"].shape[1])),
    }


# ---------------------------------------------------------------- study checkpoint import


class PickledObject(dict):
    """Stand-in for a class that a study checkpoint pickled but this package does not trust.

    The restricted unpickler gives one subclass per pickled class name. The instance
    only records what the pickle would have passed to the real class: constructor
    arguments, the ``__setstate__`` state, and dict or list items. No method of the
    real class runs and its module is never imported.
    """

    # "module.ClassName" as written in the pickle
    qualified_name: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObject:
        instance = super().__new__(cls)
        instance.call_args = args
        instance.call_kwargs = kwargs
        instance.state = None
        instance.items_appended = []
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # the arguments were recorded by __new__; dict.__init__ must not consume them
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.items_appended.append(item)

    def extend(self, items: Any) -> None:
        self.items_appended.extend(items)

    def __repr__(self) -> str:
        return f"<pickled {self.qualified_name}>"


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only the globals torch allows for ``weights_only`` loads.

    Every other global becomes a :class:`PickledObject` subclass, so nothing outside
    torch's tensor-rebuilding functions, storages, dtypes and a few builtins is called.
    It extends Python's pure-Python unpickler, whose opcode table can be changed, so
    that BUILD only sets the state of stand-ins, tensors and ordered dicts. A crafted
    file could otherwise set attributes on an allowed class itself.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stand_ins: dict[str, type[PickledObject]] = {}

    def _load_build_checked(self) -> None:
        target = self.stack[-2]
        if not isinstance(target, (PickledObject, torch.Tensor, OrderedDict)):
            raise pickle.UnpicklingError(
                f"rejected BUILD on {target!r}: only stand-ins, tensors and OrderedDicts take a state"
            )
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build_checked

    def find_class(self, module: str, name: str) -> Any:
        qualified_name = f"{module}.{name}"
        allowed = _torch_safe_globals()
        if qualified_name in allowed:
            return allowed[qualified_name]
        if qualified_name not in self.stand_ins:
            logger.debug("standing in for pickled global %s", qualified_name)
            self.stand_ins[qualified_name] = types.new_class(
                name.replace(".", "_"),
                (PickledObject,),
                exec_body=lambda namespace: namespace.update(qualified_name=qualified_name),
            )
        return self.stand_ins[qualified_name]


def _torch_safe_globals() -> dict[str, Any]:
    # NOTE: private torch API (present since torch 2.4, checked on 2.13); it is the list
    # torch.load(weights_only=True) itself admits
    from torch import _weights_only_unpickler

    return _weights_only_unpickler._get_allowed_globals()


def _restricted_pickle_module() -> types.ModuleType:
    module = types.ModuleType("signattention_restricted_pickle")
    module.Unpickler = _RestrictedUnpickler
    module.load = lambda file, **kwargs: _RestrictedUnpickler(file, **kwargs).load()
    return module


def read_study_checkpoint(ckpt_path: str | Path) -> dict[str, Any]:
    """Read a study Lightning checkpoint with the restricted unpickler.

    Objects of classes outside torch's ``weights_only`` allowlist come back as
    :class:`PickledObject` stand-ins.

    Raises:
        CheckpointError: when the file is missing or not a ``torch.save`` file.
    """
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise CheckpointError(f"study checkpoint not found: {ckpt_path}")
    try:
        # torch.load refuses weights_only=True together with a pickle module, so the
        # restriction here is the unpickler's own find_class
        checkpoint = torch.load(
            ckpt_path, map_location="cpu", pickle_module=_restricted_pickle_module()
        )
    except (
        pickle.UnpicklingError, RuntimeError, EOFError, OSError,
        AttributeError, TypeError, ValueError, KeyError, IndexError,
    ) as error:
        # a damaged or crafted file fails inside torch's loader in many ways; each means unreadable
        detail = str(error) or "the file ends early"
        raise CheckpointError(
            f"{ckpt_path} could not be read as a PyTorch Lightning checkpoint "
            f"({type(error).__name__}: {detail}); check that the file is complete"
        ) from error
    # a stand-in is a dict subclass too, but only a real dict is a Lightning checkpoint
    if not isinstance(checkpoint, dict) or isinstance(checkpoint, PickledObject):
        found = checkpoint.qualified_name if isinstance(checkpoint, PickledObject) else type(checkpoint).__name__
        raise CheckpointError(f"{ckpt_path} contains a {found}, not a Lightning checkpoint dict")
    return checkpoint


def import_study_checkpoint(
    ckpt_path: str | Path,
    out_dir: str | Path,
    nhead: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a study Lightning checkpoint into a run folder and return the folder.

    The steps:

    1. Read the file with the restricted unpickler and take the weights under ``model.``.
    2. Read ``token_to_idx`` from the pickled tokenizer, keeping every id.
    3. Map the config keys that have a :class:`TrainConfig` field. The others are
       listed in ``import.json``.
    4. Check that the positional encodings are the sinusoidal tables this model
       computes, then rebuild them at this model's length.
    5. Check that the config, vocabulary and weights agree, and write the run folder.

    Args:
        ckpt_path: the ``.ckpt`` file.
        out_dir: the run folder to create, such as ``runs/study_gsl``.
        nhead: attention heads, when the config has no NHEAD; default 8, the
            ``nn.Transformer`` default the study used.
        overwrite: replace an existing ``out_dir``.

    Raises:
        CheckpointError: naming what is missing or inconsistent.
    """
    from signattention_core.config import ConfigError, TrainConfig
    from signattention_core.tokenizer import Tokenizer
    from signattention_core.transforms import n_features

    ckpt_path = Path(ckpt_path)
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise CheckpointError(
            f"run folder {out_dir} already exists; choose another name or pass overwrite=True"
        )

    checkpoint = read_study_checkpoint(ckpt_path)
    state_dict = _study_state_dict(checkpoint, ckpt_path)
    hyper_parameters = checkpoint.get("hyper_parameters")
    if not isinstance(hyper_parameters, Mapping):
        raise CheckpointError(
            f"{ckpt_path} has no hyper_parameters dict, so its config and vocabulary are unknown"
        )

    # vocabulary, ids kept exactly
    token_to_idx, tokenizer_class = _find_token_to_idx(hyper_parameters, ckpt_path)
    _check_special_tokens(token_to_idx, ckpt_path)
    try:
        tokenizer = Tokenizer.from_token_to_id(token_to_idx)
    except ValueError as error:
        raise CheckpointError(f"{ckpt_path}: invalid token_to_idx: {error}") from error

    # config
    study_config = _find_study_config(hyper_parameters, ckpt_path)
    # head count and dropout are placeholders here; the config decides them below
    weight_args = infer_model_args(state_dict, nhead=1, dropout=0.0)
    config_values, dropped = _map_study_config(study_config, weight_args, nhead, ckpt_path)
    try:
        config = TrainConfig.from_dict(config_values, source=f"{ckpt_path} hyper_parameters")
    except ConfigError as error:
        raise CheckpointError(str(error)) from error

    # consistency of config, vocabulary and weights
    expected_features = n_features(config.transform_config())
    if weight_args["n_features"] != expected_features:
        raise CheckpointError(
            f"{ckpt_path}: the weights take {weight_args['n_features']} features per position, "
            f"but LANDMARKS_USED {list(config.landmarks_used)} with USE_3D {config.use_3d} "
            f"give {expected_features}"
        )
    if weight_args["vocab_size"] != len(tokenizer):
        raise CheckpointError(
            f"{ckpt_path}: the generator has {weight_args['vocab_size']} outputs but token_to_idx "
            f"has {len(tokenizer)} tokens"
        )

    model_args = {
        **weight_args,
        "nhead": config.nhead,
        "dropout": config.dropout,
        "max_len": max(weight_args["max_len"], DEFAULT_MAX_LEN),
    }
    state_dict = _replace_positional_tables(state_dict, model_args, ckpt_path)
    model = SignTransformer(**model_args)
    _load_weights(model, state_dict, ckpt_path)

    if _has_key(study_config, "nhead"):
        nhead_source = "config"
    elif nhead is not None:
        nhead_source = "argument"
    else:
        nhead_source = "nn.Transformer default"
    record = {
        "source": str(ckpt_path.resolve()),
        "sha256": _sha256(ckpt_path),
        "tokenizer_class": tokenizer_class,
        "dropped_config_keys": dropped,
        "nhead_source": nhead_source,
        "lightning_version": checkpoint.get("pytorch-lightning_version"),
        "global_step": checkpoint.get("global_step"),
        # Lightning stores the 0-based index of the epoch during which it saved
        "lightning_epoch": checkpoint.get("epoch"),
    }
    record = {key: value for key, value in record.items() if _is_plain(value)}
    _write_run_folder(out_dir, model, config, tokenizer, record, overwrite)
    logger.info(
        "imported %s into %s (%d tokens, D=%d, H=%d)",
        ckpt_path, out_dir, len(tokenizer), model_args["d_model"], model_args["nhead"],
    )
    return out_dir


def _study_state_dict(checkpoint: Mapping[str, Any], ckpt_path: Path) -> dict[str, torch.Tensor]:
    """Take the model weights out of a Lightning state_dict, without the ``model.`` prefix."""
    full = checkpoint.get("state_dict")
    if not isinstance(full, Mapping):
        raise CheckpointError(f"{ckpt_path} has no state_dict; it is not a Lightning checkpoint")
    state_dict = {
        key.removeprefix("model."): value
        for key, value in full.items()
        if isinstance(key, str) and key.startswith("model.")
    }
    if not state_dict:
        sample = list(full)[:5]
        raise CheckpointError(
            f"{ckpt_path}: no state_dict key starts with 'model.' (first keys: {sample}); "
            "the study's LightningModule keeps its network under the attribute 'model'"
        )
    ignored = [key for key in full if not (isinstance(key, str) and key.startswith("model."))]
    if ignored:
        logger.info("ignoring %d state_dict entries outside the model: %s", len(ignored), ignored)
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{ckpt_path}: state_dict entries {not_tensors} are not tensors")
    return state_dict


def _find_token_to_idx(hyper_parameters: Mapping[str, Any], ckpt_path: Path) -> tuple[dict[str, int], str]:
    """Find the pickled tokenizer's ``token_to_idx`` and name its class."""
    stack: list[tuple[Any, int]] = [(hyper_parameters, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > 4:
            continue
        if isinstance(value, PickledObject):
            fields = _object_fields(value)
            if isinstance(fields.get("token_to_idx"), Mapping):
                return _token_ids(fields["token_to_idx"], ckpt_path), value.qualified_name
            stack.extend((item, depth + 1) for item in fields.values())
        elif isinstance(value, Mapping):
            if isinstance(value.get("token_to_idx"), Mapping):
                return _token_ids(value["token_to_idx"], ckpt_path), "dict"
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)
    raise CheckpointError(
        f"{ckpt_path}: no tokenizer with a token_to_idx mapping found in hyper_parameters "
        f"(keys: {sorted(map(str, hyper_parameters))})"
    )


def _object_fields(value: PickledObject) -> dict[str, Any]:
    """Attributes a stand-in received: its pickled state and any dict items."""
    fields: dict[str, Any] = dict(value)
    state = value.state
    if isinstance(state, tuple) and len(state) == 2:
        # (state, slotstate) as object.__reduce_ex__ writes it for classes with __slots__
        for part in state:
            if isinstance(part, Mapping):
                fields.update(part)
    elif isinstance(state, Mapping):
        fields.update(state)
    return fields


def _token_ids(mapping: Mapping[Any, Any], ckpt_path: Path) -> dict[str, int]:
    bad = [
        (token, index) for token, index in mapping.items()
        if not isinstance(token, str) or isinstance(index, bool) or not isinstance(index, int)
    ]
    if bad:
        raise CheckpointError(
            f"{ckpt_path}: token_to_idx must map strings to integer ids, found {bad[:5]}"
        )
    return dict(mapping)


# spellings of the special tokens accepted at ids 0-3, compared without brackets and case
_SPECIAL_SPELLINGS = (
    ("PAD", {"pad", "padding"}),
    ("UNK", {"unk", "unknown"}),
    ("BOS", {"bos", "sos", "s", "start"}),
    ("EOS", {"eos", "s", "end"}),
)


def _check_special_tokens(token_to_idx: Mapping[str, int], ckpt_path: Path) -> None:
    """Check that ids 0-3 hold PAD, UNK, BOS and EOS, whatever their exact spelling."""
    by_id = {index: token for token, index in token_to_idx.items()}
    problems = []
    for index, (role, spellings) in enumerate(_SPECIAL_SPELLINGS):
        token = by_id.get(index)
        bare = re.sub(r"[^a-z]", "", token.lower()) if token is not None else None
        if bare not in spellings:
            problems.append(f"id {index} is {token!r}, expected {role}")
    if problems:
        raise CheckpointError(
            f"{ckpt_path}: token_to_idx must give ids 0-3 to PAD, UNK, BOS and EOS: "
            + "; ".join(problems)
        )


def _find_study_config(hyper_parameters: Mapping[str, Any], ckpt_path: Path) -> Mapping[str, Any]:
    """Find the config: hyper_parameters itself or a value within it that has D_MODEL.

    A value may be a dict or a pickled object, such as a namespace, whose fields count.
    """
    candidates: list[Mapping[str, Any]] = [hyper_parameters]
    for value in hyper_parameters.values():
        if isinstance(value, PickledObject):
            candidates.append(_object_fields(value))
        elif isinstance(value, Mapping):
            candidates.append(value)
    for candidate in candidates:
        if _has_key(candidate, "d_model"):
            return candidate
    raise CheckpointError(
        f"{ckpt_path}: no config with a D_MODEL key found in hyper_parameters "
        f"(keys: {sorted(map(str, hyper_parameters))})"
    )


def _has_key(mapping: Mapping[str, Any], name: str) -> bool:
    return any(str(key).lower() == name for key in mapping)


def _map_study_config(
    study_config: Mapping[str, Any],
    weight_args: Mapping[str, Any],
    nhead: int | None,
    ckpt_path: Path,
) -> tuple[dict[str, Any], list[str]]:
    """Return TrainConfig values (lower-case keys) and the study keys it has no field for.

    The architecture read from the weights fills the keys the study config omits
    and must agree with the ones it gives.
    """
    from signattention_core.config import TrainConfig

    known = {field.name for field in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in study_config.items():
        name = str(key).lower()
        if name in known:
            values[name] = list(value) if isinstance(value, tuple) else value
        else:
            dropped.append(str(key))
    if dropped:
        logger.info("study config keys without a TrainConfig field, not imported: %s", dropped)

    conflicts = [
        f"{name.upper()} is {values[name]} but the weights have {weight_args[name]}"
        for name in _ARCHITECTURE_KEYS
        if name in values and values[name] != weight_args[name]
    ]
    if nhead is not None and "nhead" in values and values["nhead"] != nhead:
        conflicts.append(f"NHEAD is {values['nhead']} in the config but {nhead} was requested")
    if conflicts:
        raise CheckpointError(f"{ckpt_path}: config and weights disagree: " + "; ".join(conflicts))

    for name in _ARCHITECTURE_KEYS:
        values.setdefault(name, weight_args[name])
    values.setdefault("nhead", nhead if nhead is not None else STUDY_DEFAULT_NHEAD)
    return values, dropped


def _replace_positional_tables(
    state_dict: Mapping[str, torch.Tensor], model_args: Mapping[str, Any], ckpt_path: Path
) -> dict[str, torch.Tensor]:
    """Swap the study's positional tables for ones of this model's length.

    The study sized each table by its own maximum source or target length, so the
    stored lengths vary between checkpoints. The stored rows must equal the sinusoidal
    table, which is recomputed at ``model_args["max_len"]`` rows.
    """
    d_model = model_args["d_model"]
    table = sinusoidal_table(model_args["max_len"], d_model)  # (1, max_len, D)
    replaced = dict(state_dict)
    for key in ("src_pe.pe", "tgt_pe.pe"):
        stored = state_dict[key].float()
        if stored.dim() != 3 or stored.shape[0] != 1 or stored.shape[2] != d_model:
            raise CheckpointError(
                f"{ckpt_path}: {key} has shape {tuple(stored.shape)}, expected (1, length, {d_model})"
            )
        length = stored.shape[1]
        if not torch.allclose(stored, table[:, :length], atol=1e-4, rtol=0.0):
            raise CheckpointError(
                f"{ckpt_path}: {key} is not the sinusoidal positional encoding this model computes "
                "(largest difference "
                f"{(stored - table[:, :length]).abs().max().item():.3g}); the checkpoint comes from "
                "a different architecture"
            )
        replaced[key] = table.clone()
    return replaced


def _write_run_folder(
    out_dir: Path,
    model: SignTransformer,
    config: Any,
    tokenizer: Any,
    record: Mapping[str, Any],
    overwrite: bool,
) -> None:
    """Write an imported run folder into a temporary sibling and rename it into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        _write_json(tmp / CONFIG_FILE, config.to_dict())
        tokenizer.save(tmp / VOCAB_FILE)
        _write_json(tmp / CORPUS_FILE, {"name": None, "path": None})
        _write_json(tmp / IMPORT_FILE, dict(record))
        lightning_epoch = record.get("lightning_epoch")
        completed_epochs = lightning_epoch + 1 if isinstance(lightning_epoch, int) else 0
        for name in CHECKPOINT_FILES.values():
            save_checkpoint(
                tmp / name, model, config, tokenizer,
                epoch=completed_epochs, extra={"imported_from": dict(record)},
            )

        if out_dir.exists():
            if not overwrite:
                raise CheckpointError(f"run folder {out_dir} appeared while importing; nothing was replaced")
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# ---------------------------------------------------------------- helpers


def _load_weights(model: SignTransformer, state_dict: Mapping[str, torch.Tensor], source: Any) -> None:
    """Load weights strictly, turning key or shape mismatches into a CheckpointError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shapes = [
        f"{key}: {tuple(state_dict[key].shape)} in the file, {tuple(expected[key].shape)} in the model"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if wrong_shapes:
            parts.append("shape mismatches " + "; ".join(wrong_shapes))
        raise CheckpointError(f"{source}: weights do not fit the model: " + "; ".join(parts))

    # torch.argmax picks a NaN logit, so a diverged model would decode the same token at every
    # step and be extracted and evaluated as if it had predicted it
    not_finite = [
        key for key, tensor in state_dict.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if not_finite:
        raise CheckpointError(
            f"{source}: weights {not_finite[:5]} contain NaN or infinite values "
            f"({len(not_finite)} tensor(s)); training diverged or the file is damaged, "
            "so use another checkpoint of the run"
        )
    model.load_state_dict(state_dict, strict=True)


def _config_to_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if isinstance(config, Mapping):
        return dict(config)
    raise CheckpointError(
        f"config must be a TrainConfig or a mapping, got {type(config).__name__}"
    )


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict) and type(value) is dict:
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def _check_plain(value: Any, where: str, path: Path) -> None:
    """Raise unless ``value`` holds only tensors, containers and plain Python values."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]", path)
        return
    if type(value) is dict:
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(
                    f"cannot save {path}: {where} has a key of type {type(key).__name__}; use str or int keys"
                )
            _check_plain(item, f"{where}[{key!r}]", path)
        return
    raise CheckpointError(
        f"cannot save {path}: {where} is a {type(value).__name__}, which weights_only loading "
        "rejects; convert it to tensors, numbers, strings, lists or dicts"
    )


def _contains_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_tensor(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_tensor(item) for item in value.values())
    return False


def _check_vocab_file(path: Path, tokens: Sequence[str]) -> None:
    if not path.is_file():
        logger.warning("%s is missing; using the vocabulary stored in the checkpoint", path)
        return
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("tokens") != list(tokens):
        raise CheckpointError(
            f"{path} does not match the vocabulary stored in the checkpoint; rewrite it from the "
            "checkpoint or restore the original run folder"
        )


def _read_corpus_reference(path: Path) -> Any:
    """Read corpus.json for the run's info, or None; a damaged file must not block the model."""
    if not path.is_file():
        return None
    try:
        return _read_json(path)
    except CheckpointError as error:
        # the caller can still name the corpus itself (extract.py --corpus)
        logger.warning("ignoring %s: %s", path, error)
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid UTF-8 JSON: {error}") from error


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
