"""Checkpoints written before the run engine (gankit 0.1 loop): read them as the engine writes them.

Those runs were all one-G-one-D games; their progress counted G and D steps and batches (n_critic per
iteration), and the EMA count was one number for G. The tensors and optimiser layout are unchanged.
"""
from __future__ import annotations


def upgrade_meta(meta: dict) -> dict:
    """``meta`` in the engine's layout (a copy when it was older; unchanged otherwise)."""
    progress = meta.get("progress", {})
    if "g_steps" not in progress:
        return meta
    n_critic = int(meta.get("config", {}).get("train", {}).get("n_critic", 1))
    new = {"images": progress["images"], "step": progress["g_steps"], "epoch": progress["epoch"],
           "batch": progress["batch"] // n_critic, "rollbacks": progress.get("rollbacks", 0),
           "phase_steps": {"D": progress["d_steps"], "G": progress["g_steps"]}}
    ema = meta.get("ema_updates", 0)
    return {**meta, "progress": new, "ema_updates": ema if isinstance(ema, dict) else {"G": ema}}
