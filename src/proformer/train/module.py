"""The LightningModule: losses, the two schedules, the original's clipping, global validation metrics;
the ``train.ema`` weight average."""

from __future__ import annotations

import math
import re
import warnings

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch.optim.swa_utils import get_ema_multi_avg_fn
from torchmetrics.aggregation import CatMetric

from ..config import TrainConfig
from ..metrics import pearson, per_target, spearman
from ..model import ModelConfig, Proformer
from ..inference import predict_batch


class TrainingFailed(RuntimeError):
    """Training ran but produced no usable model (a failure, not a usage error)."""


class TrainingDiverged(TrainingFailed):
    """The training loss became NaN or infinite."""


#: How often (optimizer steps) a run on an accelerator, or under DDP, checks for a non-finite
#: loss. The check reads one number back from the device (a host-device sync, and a collective
#: under DDP), so it is not done every step there; a single CPU process checks every step, where
#: reading a tensor costs nothing. The step of the first bad loss is kept on the device either
#: way, so the message names it exactly.
NONFINITE_CHECK_EVERY = 50


def lr_factor(schedule: str, step: int, warmup: int, total: int, dim: int) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based).

    ``warmup_cosine``: linear from 1/warmup to 1 over ``warmup`` steps, then a cosine to 0 at
    ``total``. ``noam``: dim^-0.5 * min(s^-0.5, s * warmup^-1.5) with s = step + 1 (an
    absolute rate: the optimizer's base lr is 1). ``constant``: 1.
    """
    if schedule == "constant":
        return 1.0
    s = step + 1
    if schedule == "noam":
        return dim**-0.5 * min(s**-0.5, s * warmup**-1.5)
    if s <= warmup:
        return s / warmup
    progress = min((s - warmup) / max(total - warmup, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_original(parameters, value: float, norm: float) -> None:
    """Keras clipvalue then clipnorm: each gradient element to +-value, then each tensor to ``norm``."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    torch._foreach_clamp_min_(grads, -value)
    torch._foreach_clamp_max_(grads, value)
    norms = torch._foreach_norm(grads)
    # g * norm / max(||g||, norm): unchanged below the threshold, rescaled to it above.
    scales = [norm / torch.clamp(n, min=norm) for n in norms]
    torch._foreach_mul_(grads, scales)


def make_optimizer(parameters, config: TrainConfig, lr: float, device: torch.device | str = "cpu") -> torch.optim.Optimizer:
    """Adam (the original), AdamW or Lion over ``parameters`` with ``config``'s betas and weight decay."""
    betas = (config.beta1, config.beta2)
    # The fused kernels are several times faster than the per-tensor loop (CPU and CUDA).
    fused = torch.device(device).type in ("cpu", "cuda")
    if config.optimizer == "adam":
        if config.weight_decay:
            # Checked here, not in TrainConfig, so that --set weight_decay=... --set optimizer=adamw
            # works in either order.
            raise ValueError(f"weight_decay={config.weight_decay} needs optimizer=adamw or lion "
                             f"(Adam's L2 penalty is not what the recipes mean)")
        return torch.optim.Adam(parameters, lr=lr, betas=betas, eps=config.eps, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, betas=betas, eps=config.eps, weight_decay=config.weight_decay, fused=fused)
    from lion_pytorch import Lion

    return Lion(parameters, lr=lr, betas=betas, weight_decay=config.weight_decay)


def target_keys(names: list[str]) -> list[str]:
    """Column-safe suffixes of per-target metric names: ``val_pearson_{key}`` for each target.

    Characters other than letters, digits, ``.`` and ``-`` become ``_`` (a name is used as a
    CSV column and a Lightning metric key); a name that would repeat gets its column index.
    """
    keys = []
    for index, name in enumerate(names):
        key = re.sub(r"[^A-Za-z0-9.-]+", "_", str(name)).strip("_") or f"target_{index}"
        keys.append(f"{key}_{index}" if key in keys else key)
    return keys


def per_target_metric_names(names: list[str]) -> list[str]:
    """The per-target validation metrics of a run with targets ``names`` (none for one target),
    in the order of metrics.csv's columns: each target's Pearson, then each target's Spearman."""
    if len(names) < 2:
        return []
    keys = target_keys(names)
    return [f"val_pearson_{k}" for k in keys] + [f"val_spearman_{k}" for k in keys]


class ProformerModule(L.LightningModule):
    """Proformer + its training recipe.

    Parameters
    ----------
    model : dict
        ModelConfig fields.
    train : dict
        TrainConfig fields.
    steps_per_epoch : int
        Optimizer steps per epoch (for one epoch of warmup and the cosine's end).
    rc_average : bool
        Validate on the mean of the predictions for each sequence and its reverse complement
        (``data.rc_average``), as predict will.
    target_names : list of str, optional
        The targets' names (the dataset's); with several targets, validation also reports a
        Pearson and a Spearman per target, ``val_pearson_{name}`` (see :func:`target_keys`).
        Default: ``target_0``, ``target_1``, ...
    """

    def __init__(self, model: dict, train: dict, steps_per_epoch: int, rc_average: bool = False,
                 target_names: list[str] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model_config = ModelConfig.from_dict(model)
        self.train_config = TrainConfig(**train)
        self.model = Proformer(self.model_config)
        # The loss method, not the module, is compiled: the weights keep their names (a compiled
        # module's state_dict prefixes them with _orig_mod.) and validation runs eagerly.
        self.training_loss = torch.compile(self.model.loss) if self.train_config.compile else self.model.loss
        self.steps_per_epoch = steps_per_epoch
        self.rc_average = rc_average
        n = self.model_config.n_targets
        names = list(target_names) if target_names is not None else [f"target_{i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"target_names has {len(names)} name(s) {names} but the model predicts n_targets={n}")
        self.target_names = names
        # Validation outputs of every process, gathered by torchmetrics (rows of unequal count
        # per rank included), so the metrics are over the whole validation set.
        # NaN predictions are kept (a diverged model must show as one, not be filtered out).
        self.val_predictions, self.val_targets = CatMetric(nan_strategy="disable"), CatMetric(nan_strategy="disable")
        self.val_history: list[dict] = []
        self.epoch_sums, self.epoch_count = torch.zeros(3), 0
        # (optimizer step, loss) of the first non-finite loss; step -1: none yet.
        self.first_bad_step, self.first_bad_loss = torch.tensor(-1, dtype=torch.long), torch.tensor(0.0)

    def on_train_epoch_start(self) -> None:
        self.epoch_sums.zero_()
        self.epoch_count = 0

    def train_means(self) -> dict[str, float]:
        """This process's mean training loss, MSE and reconstruction loss over the epoch so far."""
        means = (self.epoch_sums / max(self.epoch_count, 1)).tolist()  # one sync per epoch
        return dict(zip(("train_loss", "train_mse", "train_reconstruction"), means))

    # -- steps ---------------------------------------------------------------------------

    def objective(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss one batch is trained on: the target loss + ``mask_loss_weight`` x reconstruction.

        Also what ``proformer bench train`` times, so the benchmark runs the real training step.
        """
        _, parts = self.training_loss(batch["codes"], batch["targets"], mask=batch.get("mask"), singleton=batch.get("singleton"))
        return parts["target"] + self.train_config.mask_loss_weight * parts["reconstruction"], parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, parts = self.objective(batch)
        size = len(batch["codes"])
        if self.epoch_sums.device != loss.device:
            self.epoch_sums = self.epoch_sums.to(loss.device)
        self.epoch_sums += torch.stack([loss.detach(), parts["mse"].detach(), parts["reconstruction"].detach()]).float() * size
        self._note_nonfinite(loss.detach())
        world = self.trainer.world_size if self._trainer is not None else 1
        if (loss.device.type == "cpu" and world == 1) or (batch_idx + 1) % NONFINITE_CHECK_EVERY == 0:
            self.check_finite()  # before backward: a bad loss never reaches the weights on a CPU
        self.epoch_count += size
        # logger=False here and below: the loggers get RunDirectory's one row per epoch instead
        # (proformer.train.loggers); these values feed the progress bar and the callbacks.
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size, sync_dist=True,
                 logger=False)
        self.log("train_mse", parts["mse"], on_step=False, on_epoch=True, batch_size=size, sync_dist=True, logger=False)
        self.log("train_reconstruction", parts["reconstruction"], on_step=False, on_epoch=True, batch_size=size,
                 sync_dist=True, logger=False)
        return loss

    def _note_nonfinite(self, loss: torch.Tensor) -> None:
        """Remember the step and value of the first non-finite loss, on the device (no sync)."""
        if self.first_bad_step.device != loss.device:
            self.first_bad_step, self.first_bad_loss = self.first_bad_step.to(loss.device), self.first_bad_loss.to(loss.device)
        new = (self.first_bad_step < 0) & ~torch.isfinite(loss)
        self.first_bad_step = torch.where(new, torch.full_like(self.first_bad_step, self.global_step), self.first_bad_step)
        self.first_bad_loss = torch.where(new, loss.float(), self.first_bad_loss)

    def check_finite(self) -> None:
        """Raise :class:`TrainingDiverged` (on every process) once a loss has been NaN or infinite."""
        bad = bool(self.first_bad_step >= 0)
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return
        step, value = int(self.first_bad_step), float(self.first_bad_loss)
        config = self.train_config
        where = f"at optimizer step {step + 1}" if step >= 0 else "on another process"
        raise TrainingDiverged(
            f"training stopped: the loss became {value if step >= 0 else 'non-finite'} in epoch {self.current_epoch + 1}, "
            f"{where}. Likely causes: a learning rate too high for this model (lr={config.lr:g}, "
            f"schedule={config.schedule}); clipping switched off (clip={config.clip}); bf16 overflow "
            f"(precision={config.precision}); targets far from their mean (data.standardize); a too small Adam "
            f"eps (eps={config.eps:g}). Lower the learning rate or change one of these and train again"
        )

    def on_train_epoch_end(self) -> None:
        self.check_finite()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        prediction = predict_batch(self.model, batch["codes"], batch.get("singleton"), self.rc_average)
        self.val_predictions.update(prediction.reshape(len(prediction), -1))
        self.val_targets.update(batch["targets"].float().reshape(len(prediction), -1))

    def on_validation_epoch_end(self) -> None:
        """Pearson and Spearman over the whole validation set (all ranks), not a mean of batches.

        With several targets ``val_pearson`` and ``val_spearman`` are the means over the targets
        (``val_pearson`` picks the best epoch), and each target's own are logged beside them as
        ``val_pearson_{name}`` and ``val_spearman_{name}``.
        """
        width = self.model_config.n_targets
        p, t = (self._gathered(metric, width) for metric in (self.val_predictions, self.val_targets))
        pearsons, spearmans = per_target(pearson, p, t), per_target(spearman, p, t)
        metrics = {
            "val_pearson": float(np.mean(pearsons)),
            "val_spearman": float(np.mean(spearmans)),
            "val_mse": float(np.mean((p - t) ** 2)),
            "val_prediction_std": float(p.std(axis=0).mean()),
        }
        if width > 1:
            keys = target_keys(self.target_names)
            metrics.update({f"val_pearson_{k}": float(r) for k, r in zip(keys, pearsons)})
            metrics.update({f"val_spearman_{k}": float(r) for k, r in zip(keys, spearmans)})
        if self.trainer.sanity_checking:
            return
        # A collapsed predictor has no Pearson; rank it below every real one for checkpointing.
        monitored = metrics["val_pearson"] if math.isfinite(metrics["val_pearson"]) else -1.0
        self.log("val_pearson", monitored, prog_bar=True, sync_dist=False, logger=False)
        self.log("val_spearman", metrics["val_spearman"] if math.isfinite(metrics["val_spearman"]) else -1.0, prog_bar=True,
                 logger=False)
        self.log("val_mse", metrics["val_mse"], logger=False)
        for name in per_target_metric_names(self.target_names):
            self.log(name, metrics[name], logger=False)
        self.val_history.append({"epoch": self.current_epoch, **metrics})

    @staticmethod
    def _gathered(metric: CatMetric, width: int) -> np.ndarray:
        """``(rows, width)`` float64: every process's rows, then the metric is reset for the next epoch."""
        # compute() on every rank, updated or not: it is a collective operation under DDP.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*was called before the ``update`` method")
            values = metric.compute()
        metric.reset()
        if isinstance(values, list):  # no validation rows anywhere
            values = torch.zeros(0, width)
        return values.reshape(-1, width).double().cpu().numpy()

    # -- optimisation --------------------------------------------------------------------

    def configure_optimizers(self):
        config = self.train_config
        base_lr = 1.0 if config.schedule == "noam" else config.lr
        optimizer = make_optimizer(self.parameters(), config, base_lr, self.device)
        total = self.steps_per_epoch * config.epochs
        if config.schedule == "one_cycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
        else:
            warmup = config.warmup_steps or (12_500 if config.schedule == "noam" else self.steps_per_epoch)
            dim = self.model_config.dim
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: lr_factor(config.schedule, step, warmup, total, dim)
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        config = self.train_config
        if config.clip == "original":
            clip_original(self.parameters(), config.clip_value, config.clip_norm)
        elif config.clip == "global_norm":
            # (Not self.clip_gradients: this also runs without a Trainer, in proformer bench.)
            torch.nn.utils.clip_grad_norm_(self.parameters(), config.clip_norm)



class EMAWeights(WeightAveraging):
    """``train.ema``: an exponential moving average of the weights, for validation and the saved model.

    Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` does the work. It keeps a
    :class:`torch.optim.swa_utils.AveragedModel` (a copy of the module) and after every
    optimizer step sets ``average = decay * average + (1 - decay) * weights`` (the first step
    copies the weights). For each validation epoch it swaps the average into the module and
    swaps it back afterwards, so the validation metrics, the best epoch and early stopping judge
    the average while training goes on from the raw weights. A checkpoint holds the average as
    its ``state_dict`` and the raw weights as ``current_model_state`` (the update count in
    ``averaging_state``); loading one (``--resume``) restores both. When ``fit`` ends the
    module is left holding the average.

    Two choices differ from Lightning's ``EMAWeightAveraging``: only parameters are averaged
    (``use_buffers=False``), because the Proformer's buffers are integer constants (the strand
    ids, the k-mer offsets) that an average computed in floating point could round down; they
    are copied instead. And the update is ``get_ema_multi_avg_fn``'s, one fused lerp per device
    and dtype, rather than a few kernels per weight tensor.

    Parameters
    ----------
    decay : float
        In (0, 1); the average spans about ``1 / (1 - decay)`` optimizer steps.
    """

    def __init__(self, decay: float):
        super().__init__(use_buffers=False, multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = decay

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # A callback's setup runs before the strategy moves the module to its device, so
        # WeightAveraging's default (the module's device at that time, the CPU) would keep the
        # average in host memory and copy every weight there after each GPU step.
        if self._device is None:
            self._device = trainer.strategy.root_device
        super().setup(trainer, pl_module, stage)

    def averaged_state(self) -> dict[str, torch.Tensor]:
        """The Proformer weights that validation judges: the average's ``state_dict``, with
        :class:`~proformer.model.Proformer`'s keys (as the run's weights file holds them)."""
        if self._average_model is None:
            raise RuntimeError("EMAWeights.averaged_state() before fit set the average up")
        return self._average_model.module.model.state_dict()


def validated_weights(trainer: L.Trainer, module: ProformerModule) -> dict[str, torch.Tensor]:
    """The Proformer weights the latest validation judged: the ``train.ema`` average when the
    trainer keeps one (:class:`EMAWeights`, which has swapped the raw weights back by the time
    ``on_validation_end`` runs), else the module's own."""
    for callback in trainer.callbacks:
        if isinstance(callback, EMAWeights):
            return callback.averaged_state()
    return module.model.state_dict()
