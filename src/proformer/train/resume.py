"""``--resume``: what identifies a run's data, and the check that a resumed run trains on the same
data, split, layout and model shape as it was started with.

Run before anything is written: a refused resume changes nothing in the run directory.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import RunConfig
from ..data.dataset import Dataset

__all__ = ["RESUME_FIXED", "ResumeMismatch", "check_resume", "dataset_identity"]


class ResumeMismatch(ValueError):
    """``--resume`` with another dataset or model shape than the run was started with."""


#: Run settings a resumed run must keep: they fix the data, its split and layout, and the model.
#: data.rc_rows changes the steps of an epoch, which the schedule has counted; train.ema changes
#: what last.ckpt's state_dict holds (the average, with the raw weights beside it), so a run
#: resumed without it would train on from the average.
RESUME_FIXED = ("data.split", "data.head", "data.tail", "data.pad", "data.standardize", "data.singleton_flag",
                "data.rc_rows", "train.seed", "train.ema")


def dataset_identity(dataset: Dataset) -> dict:
    """Where a dataset is and which one it is: path, rows, and meta.json's source checksum and time."""
    source = dataset.meta.get("source") or {}
    return {"path": str(dataset.directory.resolve()), "rows": int(len(dataset)),
            "sha256": source.get("sha256") if isinstance(source, dict) else None, "created": dataset.meta.get("created")}


def check_resume(run_dir: Path, checkpoint: Path, config: RunConfig, model_cfg, identity: dict) -> None:
    """Raise :class:`ResumeMismatch` naming every difference between the run as started (its
    checkpoint and config.yaml) and ``config``: another dataset, split, layout or model shape."""
    import yaml

    from ..model.config import ModelConfig

    try:
        # Memory-mapped: only the few entries compared here are read (Lightning reads the whole
        # checkpoint again when it restores it; a dream2022 checkpoint is about 0.6 GB).
        state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        if "weights_only" in str(error) or "Weights only" in str(error):  # never pass on torch's weights_only=False advice
            reason = ("it holds objects other than tensors and plain values, which are never loaded since that could "
                      "run code")
        raise ValueError(f"--resume: {checkpoint} cannot be read ({reason}); it is truncated or damaged: start the "
                         f"run again in another --out") from None
    changes = []
    old_model = (state.get("hyper_parameters") or {}).get("model")
    if isinstance(old_model, dict):
        old = ModelConfig.from_dict(dict(old_model)).to_dict()
        new = model_cfg.to_dict()
        changes += [f"model.{k}: {old[k]!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
    old_identity = None
    for key, value in (state.get("callbacks") or {}).items():
        if str(key).startswith("RunDirectory") and isinstance(value, dict):
            old_identity = value.get("data")
    recorded = {}
    if (run_dir / "config.yaml").is_file():
        try:
            recorded = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            recorded = {}
    current = config.to_dict()
    for key in RESUME_FIXED:
        section, name = key.split(".")
        before = (recorded.get(section) or {}).get(name, current[section][name]) if isinstance(recorded, dict) else current[section][name]
        if before != current[section][name]:
            changes.append(f"{key}: {before!r} -> {current[section][name]!r}")
    if old_identity:
        for part in ("train", "valid"):
            was, now = old_identity.get(part), identity.get(part)
            if (was is None) != (now is None):
                changes.append(f"data.{'path' if part == 'train' else 'valid'}: {was and was['path']!r} -> {now and now['path']!r}")
                continue
            for field in ("path", "rows", "sha256", "created") if was else ():
                if was.get(field) != now.get(field):
                    what = "data.path" if part == "train" else "data.valid"
                    label = what if field == "path" else f"{what} ({now['path']}) {'meta.json ' if field != 'rows' else ''}{field}"
                    changes.append(f"{label}: {was.get(field)!r} -> {now.get(field)!r}")
    elif isinstance(recorded, dict) and (recorded.get("data") or {}).get("path") is not None:
        # A checkpoint from before datasets were recorded: compare config.yaml's paths.
        for key, now in (("path", identity["train"]), ("valid", identity.get("valid"))):
            was = (recorded.get("data") or {}).get(key)
            was = str(Path(was).resolve()) if was else None
            if was != (now["path"] if now else None):
                changes.append(f"data.{key}: {was!r} -> {now['path'] if now else None!r}")
    if changes:
        raise ResumeMismatch(
            f"--resume: {run_dir} was started with other settings than given now; nothing was changed. "
            f"Changed: {'; '.join(changes)}. Resume with the run's own config ({run_dir / 'config.yaml'}) and data, "
            f"or start a new run in another --out"
        )
