"""One typed config per run, nested by concern.

Defaults live in these dataclasses; a preset or YAML file overrides them, then
``--set key=value`` overrides that. Unknown keys and wrong types are errors with
a suggestion. The resolved config is written to the run folder before the first
step and embedded in every checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from .config_checks import validate_conditional
from .errors import GankitError, did_you_mean
from .launch import DistConfig
from .yaml_io import read_yaml, yaml_load


@dataclass
class DataConfig:
    name: str = "mnist"               # digits | mnist | fashion-mnist | kmnist | cifar10 | folder (a folder or zip)
    data_dir: Optional[str] = None    # existing files; None downloads into the cache (checksum-verified)
    image_size: int = 28              # folders are resized to this; named datasets have their own size
    channels: int = 1                 # for image folders: 1 (grey) or 3 (RGB)
    limit: int = 0                    # keep only the first N training images (0: all), for quick trials
    # two-domain modes (cyclegan; gankit.data.unpaired): domain B, and random crops and flips of folders
    domain_b: str = ""                # a dataset name, or folder with data_dir_b ("": data_dir/trainA, trainB)
    data_dir_b: Optional[str] = None  # domain B's files (null: data_dir)
    load_size: int = 0                # resize folders to this, then crop image_size at random (0: no crop)
    flip: bool = False                # random left-right flips of training images (photos; not digits)
    stream: str = "auto"              # folders/zips: true reads images from disk while training (DataLoader),
                                      # false loads them into memory as uint8, auto streams what would not fit
    workers: int = 3                  # DataLoader worker processes that decode streamed images (0: in-process)


@dataclass
class ModelConfig:
    arch: str = "dcgan"               # dcgan | dcgan64 | resnet | mlp (gankit.nets)
    z_dim: int = 100                  # latent size; z ~ N(0, I)
    width_g: int = 64                 # channels (dcgan) or units (mlp) of G's widest high-res layer
    width_d: int = 64
    norm_g: str = "batch"             # batch | layer | spectral | none
    norm_d: str = "batch"             # DCGAN's D never normalises its first layer
    act_g: str = "relu"               # relu | leaky_relu | tanh | elu
    act_d: str = "leaky_relu"
    depth_d: int = 0                  # dcgan: extra 3x3 conv blocks at D's lowest resolution
    # Conditional GAN: G gets a label embedding joined to z; D sees the label by input concatenation
    # (label maps as extra channels), by projection (Miyato & Koyama 2018), or only through an auxiliary
    # class head (ac: AC-GAN, needs objective.ac_weight > 0).
    conditional: str = "none"         # none | concat | projection | ac
    n_classes: int = 0                # label count of a conditional model (0: the dataset's class count)
    embed_dim: int = 32               # size of G's label embedding, joined to z
    # Unconditional, no labels: G reads a categorical code c in [0, codes) from z's first coordinate
    # (gankit.nets.coded). What makes G use it: code_kind=clusters conditions D (by projection) on k-means
    # clusters of the training images; code_kind=info gives D a head predicting c from G's images
    # (InfoGAN; needs objective.info_weight > 0). codes=0: off.
    codes: int = 0
    code_kind: str = "clusters"       # clusters | info
    # The architecture's own options (gankit.nets.registry), e.g. mlp: {depth: 2} or {widths: [256, 512]}.
    options: dict = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    name: str = "non-saturating"      # a catalogue name, or "custom" with f1/f2/f3 below
    f1: Optional[str] = None          # expressions in d, e.g. "-0.5*d**2" (custom objectives only)
    f2: Optional[str] = None
    f3: Optional[str] = None
    domain: Optional[str] = None      # custom objectives only: probability | real (default real)
    penalty: str = "none"             # none | gp | r1 | r2 (per-sample, weighted below)
    penalty_weight: float = 10.0      # gp: lambda (10); r1/r2: gamma/2
    penalty_every: int = 1            # apply the penalty every N D steps (lazy regularisation)
    clip: float = 0.0                 # WGAN weight clipping to [-clip, clip] after each D step (0: off)
    ac_weight: float = 0.0            # AC-GAN: weight of the class cross-entropy in D's and G's losses (0: off)
    info_weight: float = 0.0          # model.codes: weight of the code cross-entropy in D's and G's losses
    lambda_cycle: float = 10.0        # cyclegan: weight of the cycle-consistency L1 terms
    lambda_identity: float = 0.5      # cyclegan: identity L1 weight as a fraction of lambda_cycle (0: off)


@dataclass
class OptimConfig:
    lr_g: float = 2e-4                # DCGAN defaults: Adam(2e-4, betas 0.5/0.999)
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    beta1_d: Optional[float] = None   # per-network override of beta1 (None: same as beta1)
    beta1_g: Optional[float] = None
    decay: str = "none"               # none | linear: both lrs fall linearly to 0 at the end of the run ...
    decay_start: float = 0.5          # ... starting at this fraction of the run's images


@dataclass
class TrainConfig:
    epochs: float = 5.0               # duration in epochs of the training set ...
    images: int = 0                   # ... or in real images seen (wins when > 0)
    batch_size: int = 128
    n_critic: int = 1                 # D steps per G step; each D step consumes one real batch
    g_topk: float = 1.0               # fraction of fakes G learns from, those D rates most real (1: all)
    seed: int = 0                     # same seed + config on CPU gives the same losses
    ema: float = 0.0                  # decay of the moving average of G's weights (0: off)
    ema_start: int = 0                # images seen before the average starts tracking G
    device: str = "auto"              # auto | cpu | cuda | cuda:N | mps
    # Speed (gankit.engine.precision). auto: bf16 autocast where bf16 is fast (CUDA >= 8.0, CPUs with
    # AVX-512 BF16 or AMX), else fp32; losses and penalties always run in fp32; fp16 is CUDA-only.
    precision: str = "auto"           # auto | fp32 | bf16 | fp16
    channels_last: Optional[bool] = None  # NHWC memory format; None (auto): on CUDA only
    compile: bool = False             # torch.compile the networks the steps call (first steps compile)
    log_every: int = 50               # G steps between logged metrics (each log syncs the device)
    checkpoint_every: int = 1         # epochs between checkpoints (a final one is always written)
    keep_checkpoints: int = 3         # how many recent checkpoints to keep
    grid_size: int = 64               # images in the fixed-noise sample grid (8 x 8)
    pool_size: int = 50               # cyclegan: past fakes each discriminator draws from (0: no pool)
    fake_labels: str = "uniform"      # conditional runs: labels of fakes drawn uniformly or as in the data (data)
    progress: bool = True             # progress bar with ETA on stderr
    tensorboard: bool = True          # write TensorBoard events
    report: str = "end"               # RUN_DIR/report.html (gankit report): none | end | eval (also after each evaluation)
    # A NaN/Inf in a loss, gradient or weight either stops the run naming the last good checkpoint, or
    # (rollback) reloads that checkpoint with both learning rates times rollback_lr_factor and goes on.
    on_nan: str = "stop"              # stop | rollback
    rollback_lr_factor: float = 0.5   # learning-rate multiplier per rollback; lr = lr_0 * factor ** rollbacks
    max_rollbacks: int = 3            # after this many rollbacks a further divergence stops the run


@dataclass
class EvalConfig:
    # Scoring during training (gankit.engine.evaluation); needs a dataset with a domain classifier.
    every: int = 0                    # score G every this many real images seen (0: never)
    n: int = 2000                     # samples per evaluation
    metrics: str = "fid,cs"           # comma-separated names, as for gankit evaluate --metrics
    best: str = "fid"                 # keep the checkpoint best by this headline value in RUN_DIR/best ("": none)
    seed: int = 0                     # seed of the evaluation's latent codes: the same codes every time


@dataclass
class GrowConfig:
    """Progressive growing (mode progressive, gankit.modes.progressive): the schedule, in real images seen."""

    fade_images: int = 600_000        # each new resolution fades in over this many images (alpha 0 -> 1) ...
    stable_images: int = 600_000      # ... then trains this many at alpha 1 (the first resolution: only this)
    batch_sizes: dict = field(default_factory=dict)  # resolution -> batch size, e.g. {4: 64, 32: 32}; others:
    #                                   train.batch_size (--set grow.batch_sizes.32=16 sets one)
    reset_optim: bool = True          # clear Adam's moments when a fade starts and when it ends (the paper's code)
    drift: float = 0.001              # weight of the drift term mean(D(x_real)^2) in D's loss (0: off)


@dataclass
class RunConfig:
    name: str = "run"                 # runs/<name>/
    mode: str = "gan"                 # the game (gankit.modes): gan | a registered mode's name
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    grow: GrowConfig = field(default_factory=GrowConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


PRESETS_PACKAGE = "gankit.presets"
SEED_MAX = 2 ** 32 - 1                # seeds feed several generators (seed + 1, + 2, ...) and epoch orders
GRID_MAX = 4096                       # images in a sample grid


def preset_names() -> list:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def _type_of(cls, name: str):
    return typing.get_type_hints(cls)[name]


def _coerce(value: Any, tp, key: str):
    """Check/convert ``value`` to the annotated type ``tp``; GankitError on mismatch."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if tp in (int, float) and isinstance(value, str):
        # YAML reads '1e-4' (no dot) as text; accept any plain number written as text.
        try:
            value = float(value) if tp is float else int(value)
        except ValueError:
            pass
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise GankitError(f"config key {key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise GankitError(f"config key {key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GankitError(f"config key {key} must be a number, got {value!r}")
        return float(value)
    if tp is dict:  # a free mapping (model.options): checked by whoever owns it when the config is validated
        if isinstance(value, str) and value.strip().startswith("{"):  # --set key={...}: the mapping's YAML text
            with contextlib.suppress(yaml.YAMLError):
                value = yaml.safe_load(value)
        if not isinstance(value, dict):
            raise GankitError(f"config key {key} must be a mapping, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, bool):  # YAML reads true/false as booleans: switches such as data.stream take them
            return "true" if value else "false"
        if not isinstance(value, str):
            raise GankitError(f"config key {key} must be a string, got {value!r}")
        return value
    raise GankitError(f"config key {key} has unsupported type {tp}")


def _merge(obj, updates: dict, prefix: str = ""):
    if not isinstance(updates, dict):
        raise GankitError(f"config section {prefix.rstrip('.') or '(top level)'} must be a mapping, got {updates!r}")
    names = {f.name: f for f in fields(obj)}
    for key, value in updates.items():
        full = f"{prefix}{key}"
        if not isinstance(key, str) or key not in names:
            raise GankitError(f"unknown config key {full}{did_you_mean(str(key), names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, full + ".")
        elif isinstance(current, dict) and isinstance(value, dict):
            setattr(obj, key, {**current, **value})
        else:
            setattr(obj, key, _coerce(value, _type_of(type(obj), key), full))


def validate(cfg: RunConfig) -> RunConfig:
    """Range checks that types alone cannot express."""
    t, o = cfg.train, cfg.objective
    checks = [
        (t.batch_size >= 1, "train.batch_size must be at least 1"),
        (t.n_critic >= 1, "train.n_critic must be at least 1"),
        (0 < t.g_topk <= 1, "train.g_topk must be in (0, 1]: the fraction of fakes G learns from"),
        (t.epochs > 0 or t.images > 0, "train.epochs or train.images must be positive"),
        (t.images >= 0, "train.images must not be negative"),
        (0.0 <= t.ema < 1.0, "train.ema must be in [0, 1)"),
        (t.log_every >= 1, "train.log_every must be at least 1"),
        (t.keep_checkpoints >= 1, "train.keep_checkpoints must be at least 1"),
        (1 <= t.grid_size <= GRID_MAX, f"train.grid_size must be between 1 and {GRID_MAX}"),
        (t.checkpoint_every >= 1, "train.checkpoint_every must be at least 1 (epochs between checkpoints)"),
        (0 <= t.seed <= SEED_MAX, f"train.seed must be between 0 and {SEED_MAX}"),
        (0 <= cfg.eval.seed <= SEED_MAX, f"eval.seed must be between 0 and {SEED_MAX}"),
        (t.ema_start >= 0, "train.ema_start must not be negative"),
        (cfg.eval.n <= 1_000_000, "eval.n must be at most 1000000 samples"),
        (cfg.model.z_dim >= 1, "model.z_dim must be at least 1"),
        (cfg.model.depth_d >= 0, "model.depth_d must not be negative"),
        (cfg.model.width_g >= 1 and cfg.model.width_d >= 1, "model.width_g and model.width_d must be at least 1"),
        (cfg.optim.lr_g > 0 and cfg.optim.lr_d > 0, "optim.lr_g and optim.lr_d must be positive"),
        (0 <= cfg.optim.beta1 < 1 and 0 <= cfg.optim.beta2 < 1, "optim.beta1 and optim.beta2 must be in [0, 1)"),
        (all(b is None or 0 <= b < 1 for b in (cfg.optim.beta1_d, cfg.optim.beta1_g)),
         "optim.beta1_d and optim.beta1_g must be in [0, 1) (or null: the same as optim.beta1)"),
        (o.penalty_weight >= 0, "objective.penalty_weight must not be negative"),
        (o.penalty_every >= 1, "objective.penalty_every must be at least 1"),
        (o.clip >= 0, "objective.clip must not be negative (0 turns clipping off)"),
        (cfg.data.limit >= 0, "data.limit must not be negative"),
        (cfg.eval.every >= 0, "eval.every must not be negative (0 turns evaluation during training off)"),
        (cfg.eval.n >= 10, "eval.n must be at least 10 samples"),
        (cfg.data.image_size >= 4, "data.image_size must be at least 4"),
        (cfg.data.stream in ("auto", "true", "false"), "data.stream must be auto, true or false"),
        (0 <= cfg.data.workers <= 64, "data.workers must be between 0 and 64 (0: decode in the training process)"),
        (0 < cfg.dist.timeout <= 604800, "dist.timeout must be in (0, 604800] seconds"),
        (cfg.name and "/" not in cfg.name and cfg.name not in (".", ".."), "name must be a plain folder name"),
    ]
    for ok, message in checks:
        if not ok:
            raise GankitError(message)
    if cfg.optim.decay not in ("none", "linear"):
        raise GankitError(f"optim.decay must be none or linear, got {cfg.optim.decay!r}"
                          f"{did_you_mean(cfg.optim.decay, ('none', 'linear'))}")
    if not 0 <= cfg.optim.decay_start < 1:
        raise GankitError("optim.decay_start must be in [0, 1): the fraction of the run before the decay starts")
    if t.on_nan not in ("stop", "rollback"):
        raise GankitError(f"train.on_nan must be stop or rollback, got {t.on_nan!r}"
                          f"{did_you_mean(t.on_nan, ('stop', 'rollback'))}")
    if t.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise GankitError(f"train.precision must be auto, fp32, bf16 or fp16, got {t.precision!r}"
                          f"{did_you_mean(t.precision, ('auto', 'fp32', 'bf16', 'fp16'))}")
    if t.report not in ("none", "end", "eval"):
        raise GankitError(f"train.report must be none, end or eval, got {t.report!r}"
                          f"{did_you_mean(t.report, ('none', 'end', 'eval'))}")
    if not 0 < t.rollback_lr_factor < 1:
        raise GankitError("train.rollback_lr_factor must be in (0, 1): it lowers the learning rates")
    if t.max_rollbacks < 1:
        raise GankitError("train.max_rollbacks must be at least 1")
    for name, section in vars(cfg).items():  # inf passes the range checks above but breaks training
        for key, value in vars(section).items() if dataclasses.is_dataclass(section) else ():
            if isinstance(value, float) and not math.isfinite(value):
                raise GankitError(f"config key {name}.{key} must be a finite number, got {value}")
    validate_conditional(cfg)
    # resolution -> batch size: keys as text, however given (YAML ints, --set text), so JSON keeps them equal
    cfg.grow.batch_sizes = {str(k): v for k, v in cfg.grow.batch_sizes.items()}
    from .nets import make_options

    options = make_options(cfg.model.arch, cfg.model.options)  # unknown architecture, key or type: one line
    cfg.model.options = {k: getattr(options, k) for k in cfg.model.options}  # typed: '[1,2]' from --set is a list
    if o.name == "custom" and not (o.f1 and o.f2 and o.f3):
        raise GankitError("objective.name=custom needs objective.f1, objective.f2 and objective.f3 expressions")
    return cfg


def parse_override(text: str) -> tuple:
    """'train.epochs=3' -> ('train.epochs', 3), the value read as YAML (numbers, true/false, null, text)."""
    if "=" not in text:
        raise GankitError(f"--set expects key=value, got {text!r}; for example --set train.epochs=3")
    key, raw = text.split("=", 1)
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError):
        value = raw
    if isinstance(value, (dict, list)):
        value = raw  # a plain string such as "[x]" stays text
    return key.strip(), value


def _nest(key: str, value) -> dict:
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_source(source: str) -> dict:
    """The mapping in a preset name or a YAML file path."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise GankitError(f"config file {source} does not exist")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise GankitError(f"config file {source} cannot be read ({exc})") from None
        return read_yaml(text, source)
    names = preset_names()
    if source not in names:
        raise GankitError(f"unknown preset or config file {source!r}{did_you_mean(source, names)}; "
                          f"presets: {', '.join(names)}")
    return read_yaml(resources.files(PRESETS_PACKAGE).joinpath(source + ".yaml").read_text(), f"preset {source}")


def from_dict(data: dict) -> RunConfig:
    cfg = RunConfig()
    _merge(cfg, data)
    return validate(cfg)


def resolve(source: Optional[str] = None, overrides: tuple = (), **direct) -> RunConfig:
    """Defaults <- preset/YAML ``source`` <- ``overrides`` ('a.b=v' strings) <- ``direct`` {'a.b': v}."""
    cfg = RunConfig()
    if source is not None:
        data = load_source(source)
        data.setdefault("name", Path(source).stem if Path(source).suffix else source)
        _merge(cfg, data)
    for text in overrides:
        key, value = parse_override(text)
        _merge(cfg, _nest(key, value))
    for key, value in direct.items():
        if value is not None:
            _merge(cfg, _nest(key, value))
    return validate(cfg)


def diff(a: dict, b: dict, prefix: str = "") -> list:
    """Readable 'key: old -> new' lines between two config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} -> {vb!r}")
    return out
