"""Where a run stands; all of it goes into every checkpoint, so a resumed run continues exactly."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class Progress:
    images: int = 0        # real images consumed
    step: int = 0          # iterations done (a GAN's G steps): the "step" of metrics.jsonl
    epoch: int = 0         # epochs completed
    batch: int = 0         # iterations done in the current epoch
    rollbacks: int = 0     # divergences answered by reloading a checkpoint (train.on_nan=rollback)
    phase_steps: dict = field(default_factory=dict)  # phase name -> steps it has run

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Progress":
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown progress fields {sorted(unknown)}")
        return cls(**{**values, "phase_steps": dict(values.get("phase_steps", {}))})
