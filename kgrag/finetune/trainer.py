"""The LoRA training loop: gradient accumulation, clipping, warm-up + cosine schedule, dev-loss early
stopping, checkpoints every N steps and ``--resume`` from the newest one.

The micro-batch order is a seeded permutation per epoch, so a resumed run skips exactly the
micro-batches it had consumed and continues the same sequence of optimizer steps.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field

from kgrag.config import PROMPT_VERSION
from kgrag.errors import KgragError
from kgrag.finetune.base_model import load_model, load_tokenizer
from kgrag.finetune.data import PROMPT_STYLE, TokenizedExample, collate, read_pairs, split_dev, tokenize_all
from kgrag.finetune.gguf_lora import write_gguf_lora
from kgrag.finetune.precision import Plan, select_plan
from kgrag.finetune.progress import TrainingProgress
from kgrag.finetune.report import LossLog, plot_losses
from kgrag.finetune.settings import FinetuneSettings
from kgrag.generator.adapters import GGUF_NAME, AdapterManifest, write_manifest
from kgrag.generator.registry import verified_gguf
from kgrag.io import sha256_file
from kgrag.schema import GraphSchema

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class TrainResult(BaseModel):
    out: Path
    status: str = Field(description="complete | early-stopped | interrupted")
    steps: int
    total_steps: int
    train_examples: int
    dev_examples: int
    best_dev_loss: float | None
    last_loss: float | None
    tokens_per_s: float = Field(description="training tokens per second of this process")
    seconds: float = Field(description="wall time of this process (a resumed run: this leg only)")
    total_seconds: float = Field(0.0, description="training time of all legs of the run (each --resume adds one)")
    legs: int = Field(1, description="processes that trained this run: 1 + the number of resumes")
    precision: str
    device: str
    peak_rss_mb: float


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Schedule(BaseModel):
    """How many micro-batches and optimizer steps a run has."""

    batches_per_epoch: int
    total_micro: int
    total_steps: int
    warmup_steps: int

    @classmethod
    def plan(cls, n_train: int, settings: FinetuneSettings) -> Schedule:
        per_epoch = math.ceil(n_train / settings.batch_size)
        total_micro = max(1, math.ceil(per_epoch * settings.epochs))
        steps = math.ceil(total_micro / settings.grad_accum)
        if settings.max_steps is not None:  # overrides epochs, as in transformers' Trainer
            steps = settings.max_steps
            total_micro = steps * settings.grad_accum
        return cls(
            batches_per_epoch=per_epoch,
            total_micro=total_micro,
            total_steps=steps,
            warmup_steps=math.ceil(settings.warmup_ratio * steps),
        )

    def micro_batch(self, index: int, n_train: int, batch_size: int, seed: int) -> list[int]:
        """Train-example indices of micro-batch ``index`` (a seeded shuffle per epoch)."""
        epoch, within = divmod(index, self.batches_per_epoch)
        order = list(range(n_train))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        return order[within * batch_size : (within + 1) * batch_size]


def add_lora(model: Any, settings: FinetuneSettings) -> Any:
    """``model`` wrapped by PEFT with the LoRA layers ``settings`` describe (only they train)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # transformers 5 deprecation raised from inside peft
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def lora_state(model: Any) -> dict[str, Any]:
    """The LoRA weights of a PEFT model (PEFT names), without embedding layers."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, save_embedding_layers=False)


class Trainer:
    """Fine-tunes ``settings.base`` with LoRA on ``settings.train`` into ``settings.out``."""

    def __init__(self, settings: FinetuneSettings, show_progress: bool = True) -> None:
        self.settings = settings
        self.out = Path(settings.out)
        self.show_progress = show_progress
        self.plan: Plan = select_plan(settings.precision, device=settings.device)
        self.schema = GraphSchema.load(settings.schema_path)

    # --- setup -------------------------------------------------------------------------------
    def _data(self, tokenizer: Any) -> tuple[list[TokenizedExample], list[TokenizedExample]]:
        s = self.settings
        pairs = read_pairs(s.train, self.schema, s.max_triples, s.limit)
        train, dev = split_dev(pairs, s.dev_fraction, s.max_dev, s.seed)
        train_ex = tokenize_all(tokenizer, train, s.max_seq_len)
        if not train_ex:
            raise KgragError(f"every training example is longer than max_seq_len={s.max_seq_len}")
        return train_ex, tokenize_all(tokenizer, dev, s.max_seq_len)

    def _check_resume_config(self) -> None:
        """A resumed run must train the same thing: compare with the settings saved by the first run."""
        saved = self.out / "finetune_settings.json"
        current = self.settings.model_dump_json(indent=1, exclude={"max_steps", "epochs", "threads", "patience"})
        if saved.is_file() and saved.read_text(encoding="utf-8") != current:
            raise KgragError(
                f"{self.out} holds a run with other settings; use another --out or the same options to resume"
            )
        saved.write_text(current, encoding="utf-8")

    # --- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        found = sorted(p for p in self.checkpoint_dir.glob("step-*") if (p / STATE_FILE).is_file())
        return found[-1] if found else None

    def _save_weights(self, model: Any, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in lora_state(model).items()}
        save_file(state, str(folder / ADAPTER_WEIGHTS))
        model.peft_config["default"].save_pretrained(str(folder))

    def _load_weights(self, model: Any, folder: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(folder / ADAPTER_WEIGHTS)))

    def _save_checkpoint(self, model: Any, state: dict[str, Any]) -> Path:
        folder = self.checkpoint_dir / f"step-{state['step']:07d}"
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self._save_weights(model, tmp)
        torch.save(state, tmp / STATE_FILE)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        old = sorted(p for p in self.checkpoint_dir.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
        for stale in old[: -self.settings.keep_checkpoints]:
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("checkpoint %s", folder)
        return folder

    # --- evaluation --------------------------------------------------------------------------
    def dev_loss(self, model: Any, dev: list[TokenizedExample], pad_id: int) -> float | None:
        """Token-weighted mean loss of the answers of the dev examples."""
        if not dev:
            return None
        model.eval()
        total, tokens = 0.0, 0
        with torch.no_grad():
            for example in dev:  # one at a time: the model's loss is a token mean over its batch
                batch = {k: v.to(self.plan.device) for k, v in collate([example], pad_id).items()}
                with self.plan.autocast:
                    loss = model(**batch).loss
                total += float(loss) * example.answer_tokens
                tokens += example.answer_tokens
        model.train()
        return total / max(tokens, 1)

    # --- the run -----------------------------------------------------------------------------
    def run(self, resume: bool = False) -> TrainResult:
        from transformers import get_cosine_schedule_with_warmup

        s = self.settings
        started = time.perf_counter()
        if s.threads:
            torch.set_num_threads(s.threads)
        torch.manual_seed(s.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        checkpoint = self.latest_checkpoint() if resume else None
        if resume and checkpoint is None:
            logger.warning("--resume: no checkpoint in %s; starting from step 0", self.checkpoint_dir)
        if not resume and self.latest_checkpoint() is not None:
            raise KgragError(f"{self.out} already has checkpoints: pass --resume to continue, or use another --out")
        self._check_resume_config()

        base_path, base_sha = verified_gguf(s.base)
        tokenizer = load_tokenizer(base_path)
        train, dev = self._data(tokenizer)
        schedule = Schedule.plan(len(train), s)
        logger.info(
            "%d train / %d dev examples; %d optimizer steps of %d x %d; %s on %s",
            len(train), len(dev), schedule.total_steps, s.batch_size, s.grad_accum,
            self.plan.precision, self.plan.device,
        )  # fmt: skip
        model = add_lora(load_model(base_path), s).to(self.plan.device)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
        scheduler = get_cosine_schedule_with_warmup(optimizer, schedule.warmup_steps, schedule.total_steps)
        scaler = torch.amp.GradScaler(self.plan.device, enabled=self.plan.grad_scaler)
        log = LossLog()
        state: dict[str, Any] = {
            "step": 0, "micro": 0, "best_dev": None, "bad_evals": 0, "tokens": 0, "seconds": 0.0, "legs": 0,
        }  # fmt: skip
        if checkpoint is not None:
            saved = torch.load(checkpoint / STATE_FILE, weights_only=False)
            self._load_weights(model, checkpoint)
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            scaler.load_state_dict(saved["scaler"])
            torch.set_rng_state(saved["torch_rng"])
            log = LossLog.model_validate(saved["log"])
            state.update({k: saved[k] for k in state if k in saved})  # older checkpoints lack seconds and legs
            logger.info("resumed from %s at step %d", checkpoint.name, state["step"])

        state["legs"] += 1
        leg_started = time.perf_counter()
        seconds_before = state["seconds"]
        pad_id = int(tokenizer.pad_token_id)
        status = "complete"
        progress = TrainingProgress(schedule.total_steps, state["step"], enabled=self.show_progress)
        window_tokens, window_started = 0, time.perf_counter()
        run_tokens = 0  # tokens trained by this process (a resumed run counts only its own)
        running: list[float] = []
        try:
            with progress:
                while state["micro"] < schedule.total_micro and state["step"] < schedule.total_steps:
                    ids = schedule.micro_batch(state["micro"], len(train), s.batch_size, s.seed)
                    examples = [train[i] for i in ids]
                    batch = {k: v.to(self.plan.device) for k, v in collate(examples, pad_id).items()}
                    with self.plan.autocast:
                        loss = model(**batch).loss
                    scaler.scale(loss / s.grad_accum).backward()
                    running.append(loss.item())
                    n_tokens = int(batch["attention_mask"].sum())
                    window_tokens += n_tokens
                    state["tokens"] += n_tokens
                    run_tokens += n_tokens
                    state["micro"] += 1
                    last_of_run = state["micro"] >= schedule.total_micro
                    if state["micro"] % s.grad_accum and not last_of_run:
                        continue
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    state["step"] += 1
                    elapsed = time.perf_counter() - window_started
                    tps = window_tokens / elapsed if elapsed > 0 else 0.0
                    step_loss = sum(running) / len(running)
                    running.clear()
                    log.add_train(state["step"], step_loss, scheduler.get_last_lr()[0], tps)
                    progress.update(state["step"], step_loss, tps)
                    logger.log(
                        logging.DEBUG if progress.visible else logging.INFO,
                        "step %d/%d loss %.4f lr %.2e %.0f tokens/s",
                        state["step"], schedule.total_steps, step_loss, scheduler.get_last_lr()[0], tps,
                    )  # fmt: skip
                    window_tokens, window_started = 0, time.perf_counter()
                    state["seconds"] = seconds_before + window_started - leg_started
                    done = state["step"] >= schedule.total_steps or last_of_run
                    if dev and (state["step"] % s.eval_every == 0 or done):
                        loss_dev = self.dev_loss(model, dev, pad_id)
                        assert loss_dev is not None
                        log.add_dev(state["step"], loss_dev)
                        progress.note(f"dev loss {loss_dev:.4f}")
                        logger.info("step %d: dev loss %.4f", state["step"], loss_dev)
                        if state["best_dev"] is None or loss_dev < state["best_dev"]:
                            state["best_dev"], state["bad_evals"] = loss_dev, 0
                            self._save_weights(model, self.out / "best")
                        else:
                            state["bad_evals"] += 1
                        window_started = time.perf_counter()
                    if state["step"] % s.save_every == 0 or done or state["bad_evals"] >= s.patience:
                        self._save_checkpoint(model, self._state(state, optimizer, scheduler, scaler, log))
                        window_started = time.perf_counter()
                    if state["bad_evals"] >= s.patience:
                        status = "early-stopped"
                        logger.info("dev loss has not improved for %d evaluations: stopping", s.patience)
                        break
        except KeyboardInterrupt:
            status = "interrupted"
            if state["step"] > 0:
                self._save_checkpoint(model, self._state(state, optimizer, scheduler, scaler, log))
        log.write(self.out / "training_log.json")
        plot_losses(log, self.out / "loss.png")
        result = TrainResult(
            out=self.out,
            status=status,
            steps=state["step"],
            total_steps=schedule.total_steps,
            train_examples=len(train),
            dev_examples=len(dev),
            best_dev_loss=state["best_dev"],
            last_loss=log.train[-1].loss if log.train else None,
            tokens_per_s=run_tokens / max(time.perf_counter() - started, 1e-9),
            seconds=time.perf_counter() - started,
            total_seconds=state["seconds"],
            legs=state["legs"],
            precision=self.plan.precision,
            device=self.plan.device,
            peak_rss_mb=peak_rss_mb(),
        )
        if status == "interrupted":
            return result
        self._export(model, base_sha, result)
        return result

    def _state(
        self, state: dict[str, Any], optimizer: Any, scheduler: Any, scaler: Any, log: LossLog
    ) -> dict[str, Any]:
        return {
            **state,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "log": log.model_dump(),
        }

    def _export(self, model: Any, base_sha: str, result: TrainResult) -> None:
        """The best adapter (lowest dev loss, else the last) as PEFT files, GGUF LoRA and manifest."""
        s = self.settings
        best = self.out / "best"
        if best.is_dir() and (best / ADAPTER_WEIGHTS).is_file():
            self._load_weights(model, best)
        self._save_weights(model, self.out)
        lora = write_gguf_lora(
            lora_state(model),
            s.lora_alpha,
            model.base_model.model.config,
            self.out / GGUF_NAME,
        )
        manifest = AdapterManifest(
            name=self.out.name,
            base_model=s.base,
            base_sha256=base_sha,
            adapter_sha256=sha256_file(lora),
            prompt_style=PROMPT_STYLE,
            prompt_version=PROMPT_VERSION,
            schema_name=self.schema.name,
            schema_fingerprint=self.schema.fingerprint(),
            max_triples=s.max_triples,
            training=s.model_dump(mode="json"),
            results=result.model_dump(mode="json", exclude={"out"}),
        )
        write_manifest(self.out, manifest)
