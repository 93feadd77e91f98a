"""A sweep's configuration: the grid (models x forget-set sizes x seeds x methods) and the
settings every cell shares, read from TOML and checked before any model time is spent."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from memscan.errors import UserError
from memscan.eval.tasks import PAPER_SUITE
from memscan.model.interval import MIN_UNSEEN
from memscan.unlearn.config import METHODS, PAPER_METHODS, PRESETS, RETAIN_METHODS

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

NONE = "none"  # the implanted model, not unlearned: every group's baseline
# The papers' decoding-time baseline: the same weights as "none", g = MA expected under
# differentially private decoding (`ma_dpd`), its interval from the unseen set likewise.
DPD = "dpd"
GRID_KEYS = ("models", "forget_sizes", "seeds", "methods")
CELL_KEYS = ("device", "preset", "retain_file", "retain_size")  # not shared by every cell (see `shared`)
# Settings added after sweeps were run: left out of `shared` while at their defaults, so older folders resume.
OPTIONAL_KEYS = ("max_ppl_ratio", "stop_inside")
# The implant's AdamW rate per built-in model: one rate does not fit both (the measurement
# is in docs/results/README.md, "Choosing the implant rate").
BUILTIN_IMPLANT_LR = {"smollm2-135m": 1e-4, "gemma3-270m": 1e-5}


@dataclass(frozen=True)
class SweepConfig:
    models: tuple[str, ...] = ("smollm2-135m", "gemma3-270m")
    forget_sizes: tuple[int, ...] = (8, 32, 128)
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = (NONE, *PAPER_METHODS)
    tokens: int = 64  # per sequence, as in the default run
    unseen_size: int = 32
    heldout_size: int = 16
    implant_lr: float | dict[str, float] = field(
        default_factory=lambda: dict(BUILTIN_IMPLANT_LR)
    )  # one rate, or one per model
    max_epochs: int = 10
    fixed_interval: tuple[float, ...] | None = None  # [lo, hi] instead of the unseen quantiles
    preset: str = "default"  # "paper": the authors' choices for every key not given (max_epochs, fixed_interval)
    k: int = 32  # prompt length of the extraction test
    neighbours: int = 2  # the z-score test's swapped copies
    miau_neighbours: int = 25  # the paper's MIAU: neighbours per candidate
    tasks: tuple[str, ...] = PAPER_SUITE
    task_limit: int | None = 200  # items per task (seeded subsample); None = all
    device: str | None = None
    # false: no implanting; the forget sets are what the model memorized in pretraining,
    # read from files (the papers' setting), the unseen and held-out sets from another
    implant: bool = True
    forget_files: str = ""  # a path with {size} and {seed}, e.g. .../lm_extraction_{size}_{seed}.csv
    unseen_file: str = ""  # unseen and held-out sequences, e.g. the papers' pile.csv
    text_field: str = "text"
    id_field: str = "id"  # the papers' files: doc_id
    # the retain set of GA+Mismatch and gradient difference: a seeded draw of retain_size
    # sequences from this file that are in none of a group's forget, unseen or held-out sets
    # (recorded in those cells only, so adding them to a grid keeps its folder resumable)
    retain_file: str = ""
    retain_size: int = 32
    # memscan's utility guard (`unlearn --max-ppl-ratio`), measured on each group's held-out set
    max_ppl_ratio: float | None = None
    stop_inside: bool = False  # memscan's stopping rule (`unlearn --stop-inside`)

    def forget_file(self, size: int, seed: int) -> Path:
        return Path(self.forget_files.format(size=size, seed=seed))

    def shared(self) -> dict:
        """The settings every cell depends on: a sweep folder resumes only under the same ones."""
        return {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in (*GRID_KEYS, *CELL_KEYS) and not (k in OPTIONAL_KEYS and v == FIELD_DEFAULTS[k])
        }

    def implant_lr_for(self, model: str) -> float:
        return self.implant_lr[model] if isinstance(self.implant_lr, dict) else self.implant_lr

    def cells(self) -> list[tuple[str, int, int, str]]:
        return [
            (m, f, s, method)
            for m in self.models
            for f in self.forget_sizes
            for s in self.seeds
            for method in self.methods
        ]


FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SweepConfig)}


def read_config(path: Path) -> SweepConfig:
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    return config_from_dict(raw, str(path))


def config_from_dict(raw: dict, where: str = "sweep config") -> SweepConfig:
    fields = {f.name: f for f in dataclasses.fields(SweepConfig)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    preset = raw.get("preset", "default")
    if preset not in PRESETS:
        raise UserError(f"{where}: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    values: dict = {key: value for key, value in PRESETS[preset].items() if key not in raw}
    for key, value in raw.items():
        default = fields[key].default
        if key == "implant_lr":
            value = _implant_rates(value, where)
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not value:
                raise UserError(f"{where}: {key!r} must be a non-empty list")
            if len(set(value)) != len(value):
                raise UserError(f"{where}: {key!r} lists a value twice")
            kind = type(default[0])
            if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
                raise UserError(f"{where}: {key!r} must list {kind.__name__}s")
            value = tuple(value)
        elif key == "task_limit" and value == 0:
            value = None  # TOML has no null: 0 means every item
        elif key in ("device", "preset", "forget_files", "unseen_file", "text_field", "id_field", "retain_file"):
            if not isinstance(value, str):
                raise UserError(f"{where}: {key!r} must be a string")
        elif key in ("implant", "stop_inside"):
            if not isinstance(value, bool):
                raise UserError(f"{where}: {key!r} must be true or false")
        elif key == "fixed_interval":
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
                raise UserError(f"{where}: 'fixed_interval' must be [lo, hi]")
            if not value[0] <= value[1]:
                raise UserError(f"{where}: the interval {value} is empty: lo must not exceed hi")
            value = tuple(float(v) for v in value)
        elif (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or (isinstance(default, int) and not isinstance(value, int))
        ):
            raise UserError(f"{where}: {key!r} must be a {type(default).__name__}")
        values[key] = value
    config = SweepConfig(**values)
    check_cells(config, where)
    return config


def _implant_rates(value, where: str) -> float | dict[str, float]:
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if number(value):
        return float(value)
    if isinstance(value, dict) and value and all(number(v) for v in value.values()):
        return {model: float(rate) for model, rate in value.items()}
    raise UserError(f"{where}: 'implant_lr' must be a number or a table of numbers by model")


def check_cells(config: SweepConfig, where: str) -> None:
    """Reject a grid with a cell that cannot run, naming the cell."""
    if not config.implant:
        _check_files(config, where)
    for method in config.methods:
        if method not in (NONE, DPD, *METHODS):
            raise UserError(f"{where}: unknown method {method!r} (known: {NONE}, {DPD}, {', '.join(METHODS)})")
        if method in RETAIN_METHODS and not config.retain_file:
            raise UserError(f"{where}: {method} steps on a retain set too: set retain_file (text the model must keep)")
    if config.retain_file and not Path(config.retain_file).is_file():
        raise UserError(f"{where}: {config.retain_file}: no such file")
    for size in config.forget_sizes:
        if size < 1:
            raise UserError(f"{where}: forget-set size {size} is impossible (at least 1)")
    if config.max_ppl_ratio is not None and not config.max_ppl_ratio > 1:
        raise UserError(f"{where}: max_ppl_ratio is a ratio above 1 (e.g. 1.2), not {config.max_ppl_ratio}")
    if config.unseen_size < MIN_UNSEEN:
        raise UserError(f"{where}: unseen_size {config.unseen_size} is below the {MIN_UNSEEN} the interval needs")
    for key in ("tokens", "heldout_size", "max_epochs", "retain_size"):
        if getattr(config, key) < 1:
            raise UserError(f"{where}: {key} must be at least 1")
    if config.k >= config.tokens:
        raise UserError(f"{where}: k = {config.k} leaves nothing to extract from sequences of {config.tokens} tokens")
    rates = (
        config.implant_lr if isinstance(config.implant_lr, dict) else dict.fromkeys(config.models, config.implant_lr)
    )
    for model in config.models:
        if config.implant and model not in rates:
            raise UserError(
                f"{where}: implant_lr gives no rate for model {model!r} (set implant_lr, one number or a table by model)"
            )
    if (
        min(config.neighbours, config.miau_neighbours) < 0
        or min(rates.values(), default=1.0) <= 0
        or (config.task_limit is not None and config.task_limit < 1)
    ):
        raise UserError(f"{where}: neighbours >= 0, implant_lr > 0 and task_limit >= 1 (or 0 for all) are required")


def _check_files(config: SweepConfig, where: str) -> None:
    """Without implanting, every (size, seed) names a forget file that exists, and the unseen file exists."""
    if not config.forget_files or not config.unseen_file:
        raise UserError(
            f"{where}: implant = false needs forget_files (a path with {{size}} and {{seed}}) and unseen_file"
        )
    try:
        paths = [config.forget_file(size, seed) for size in config.forget_sizes for seed in config.seeds]
    except (KeyError, IndexError, ValueError) as e:
        raise UserError(f"{where}: forget_files may hold only {{size}} and {{seed}} ({e})") from None
    for path in [*paths, Path(config.unseen_file)]:
        if not path.is_file():
            raise UserError(f"{where}: {path}: no such file")
