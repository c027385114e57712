"""Fine-tuning: precision selection, the schedule, train/inference prompt identity, and real LoRA
runs on the tiny SmolLM2 model (train, save, convert to GGUF, reload in llama.cpp, resume)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from kgrag.config import Settings
from kgrag.errors import KgragError
from kgrag.extract.extractor import Extractor
from kgrag.extract.factory import llama_cpp_options
from kgrag.finetune.data import IGNORE, prompt_messages, read_pairs, split_dev, tokenize
from kgrag.finetune.precision import cpu_has_native_bf16, select_plan
from kgrag.finetune.settings import FinetuneSettings
from kgrag.finetune.trainer import Schedule, Trainer, lora_state
from kgrag.generator.adapters import MANIFEST, read_manifest, resolve_adapter
from kgrag.generator.llama_cpp import LazyLlamaCpp
from kgrag.generator.ref import ModelRef, model_identity, prompt_style
from kgrag.generator.registry import get_spec, missing_packages
from kgrag.records import Passage
from kgrag.schema import GraphSchema
from tests.fakes import FakeGenerator

REPO = Path(__file__).resolve().parents[1]
CONLL_SCHEMA = REPO / "kgrag" / "schemas" / "conll04.yaml"
TRAIN = REPO.parent / "shared" / "data" / "conll04" / "train.jsonl"
TINY = "smollm2-135m"


def test_precision_auto_picks_bf16_only_where_the_hardware_has_it() -> None:
    cpu = select_plan("auto", cuda_available=False, cpu_bf16=False)
    assert (cpu.device, cpu.precision, cpu.autocast_dtype, cpu.grad_scaler) == ("cpu", "fp32", None, False)
    cpu_bf16 = select_plan("auto", cuda_available=False, cpu_bf16=True)
    assert (cpu_bf16.precision, cpu_bf16.autocast_dtype, cpu_bf16.grad_scaler) == ("bf16", torch.bfloat16, False)
    bf16 = select_plan("auto", cuda_available=True, cuda_bf16=True)
    assert (bf16.device, bf16.precision, bf16.grad_scaler) == ("cuda", "bf16", False)
    fp16 = select_plan("auto", cuda_available=True, cuda_bf16=False)
    assert (fp16.precision, fp16.grad_scaler) == ("fp16", True)
    assert select_plan("fp32", cuda_available=True, cuda_bf16=True).autocast_dtype is None
    assert select_plan("bf16", cuda_available=False).device == "cpu"  # allowed, measured slow here
    assert select_plan("auto", cuda_available=True, cuda_bf16=True, device="cpu", cpu_bf16=False).precision == "fp32"


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info)
    info.write_text("processor : 0\nflags : fpu avx2 fma\n")
    assert not cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "absent")


@pytest.mark.parametrize(
    ("requested", "cuda", "bf16", "device", "message"),
    [
        ("fp16", False, None, None, "needs a CUDA GPU"),
        ("bf16", True, False, None, "does not support bf16"),
        ("fp8", False, None, None, "unknown precision"),
        ("auto", False, None, "cuda", "no CUDA GPU"),
        ("auto", False, None, "tpu", "unknown device"),
    ],
)
def test_precision_refuses_what_the_machine_cannot_do(
    requested: str, cuda: bool, bf16: bool | None, device: str | None, message: str
) -> None:
    with pytest.raises(KgragError, match=message):
        select_plan(requested, cuda_available=cuda, cuda_bf16=bf16, device=device)


def _settings(tmp_path: Path, **overrides: object) -> FinetuneSettings:
    values: dict[str, object] = {"train": TRAIN, "schema_path": CONLL_SCHEMA, "out": tmp_path / "adapter"}
    values.update(overrides)
    return FinetuneSettings(**values)  # type: ignore[arg-type]


def test_schedule_counts_steps_and_max_steps_overrides_epochs(tmp_path: Path) -> None:
    plan = Schedule.plan(10, _settings(tmp_path, batch_size=2, grad_accum=2, epochs=2, warmup_ratio=0.25))
    assert (plan.batches_per_epoch, plan.total_micro, plan.total_steps, plan.warmup_steps) == (5, 10, 5, 2)
    capped = Schedule.plan(10, _settings(tmp_path, batch_size=2, grad_accum=2, max_steps=7))
    assert (capped.total_steps, capped.total_micro) == (7, 14)  # runs into a second epoch
    first_epoch = [i for m in range(5) for i in plan.micro_batch(m, 10, 2, seed=0)]
    assert sorted(first_epoch) == list(range(10))  # every example once per epoch
    assert first_epoch == [i for m in range(5) for i in plan.micro_batch(m, 10, 2, seed=0)]  # deterministic
    assert first_epoch != [i for m in range(5, 10) for i in plan.micro_batch(m, 10, 2, seed=0)]  # reshuffled


def test_training_prompt_is_the_extractors_compact_prompt() -> None:
    schema = GraphSchema.load(CONLL_SCHEMA)
    pairs = read_pairs(TRAIN, schema, max_triples=6, limit=20)
    assert len(pairs) == 20
    model = schema.extraction_model(6)
    for pair in pairs:
        model.model_validate_json(pair.target)  # the target is exactly what constrained decoding allows
    backend = FakeGenerator()
    extractor = Extractor(schema, backend, None, 6, 200, prompt_style="compact")
    text = "Booth , who assassinated President Lincoln , was an actor ."
    extractor.extract(Passage(id=0, doc_id="d", text=text, start=0, end=len(text)))
    assert backend.prompts[0] == prompt_messages(schema, text, 6)
    assert len(backend.prompts[0]) == 2  # system + passage, no few-shot turns
    train, dev = split_dev(pairs, 0.25, 3, seed=1)
    assert len(dev) == 3 and len(train) == 17 and not {p.id for p in dev} & {p.id for p in train}


class _CharTokenizer:
    """A chat-template tokenizer stand-in: one token per character."""

    def apply_chat_template(
        self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool = False
    ) -> str:
        text = "".join(f"<{m['role']}>{m['content']}<end>\n" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def __call__(self, text: str, add_special_tokens: bool) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}


def test_only_the_answer_carries_loss() -> None:
    schema = GraphSchema.load(CONLL_SCHEMA)
    pair = read_pairs(TRAIN, schema, 6, limit=1)[0]
    example = tokenize(_CharTokenizer(), pair)
    answer = "".join(chr(t) for t in example.labels if t != IGNORE)
    assert answer == pair.target + "<end>"
    assert example.labels[: -len(answer)] == [IGNORE] * (len(example.labels) - len(answer))


def test_unusable_training_data_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"text": "x", "triples": [["a", "Nope", "b"]]}\n', encoding="utf-8")
    with pytest.raises(KgragError, match="no usable training examples"):
        read_pairs(bad, GraphSchema.load(CONLL_SCHEMA), 6)


# --- real runs on the tiny model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ready() -> None:
    if missing_packages(get_spec(TINY)):
        pytest.fail("the SmolLM2 package is missing: run scripts/setup.sh")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def trained(tiny_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ft") / "tiny-lora"
    settings = FinetuneSettings(
        train=TRAIN, schema_path=CONLL_SCHEMA, base=TINY, out=out, limit=8, max_steps=3, batch_size=2,
        grad_accum=2, dev_fraction=0.25, eval_every=2, save_every=2, threads=2,
    )  # fmt: skip
    result = Trainer(settings, show_progress=False).run()
    assert result.status == "complete" and result.steps == 3
    assert (result.train_examples, result.dev_examples) == (6, 2)
    return out


def test_three_step_finetune_saves_a_loadable_adapter(trained: Path) -> None:
    manifest = read_manifest(trained)
    assert manifest.base_model == TINY and manifest.base_sha256 == get_spec(TINY).sha256
    assert manifest.prompt_style == "compact" and manifest.schema_name
    assert manifest.results["steps"] == 3
    for name in ("adapter.gguf", "adapter_model.safetensors", "adapter_config.json", "loss.png"):
        assert (trained / name).stat().st_size > 0, name
    log = json.loads((trained / "training_log.json").read_text())
    assert [p["step"] for p in log["train"]] == [1, 2, 3]
    assert [p["step"] for p in log["dev"]] == [2, 3] and all(np.isfinite(p["loss"]) for p in log["dev"])
    assert (trained / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert prompt_style(str(trained)) == "compact"
    assert "+lora:tiny-lora@" in model_identity(str(trained))


def test_adapter_runs_in_llama_cpp_with_schema_valid_output(trained: Path) -> None:
    schema = GraphSchema.load(CONLL_SCHEMA)
    settings = Settings(schema_path=CONLL_SCHEMA, model=str(trained), n_threads=2, max_tokens=120)
    backend = LazyLlamaCpp(ModelRef.parse(settings.model), llama_cpp_options(settings))
    extractor = Extractor(schema, backend, None, 6, 120, prompt_style=prompt_style(settings.model))
    text = "John Wilkes Booth , who assassinated President Lincoln , was an actor ."
    extraction = extractor.extract(Passage(id=0, doc_id="d", text=text, start=0, end=len(text)))
    assert backend.loaded
    assert extraction.error is None or "cut off" in extraction.error
    for triple in extraction.triples:
        assert triple.relation in schema.relation_names


def test_adapter_refuses_another_base_model(trained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("checkpoints"))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["base_sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(KgragError, match="trained on a base model"):
        resolve_adapter(copy)
    manifest["base_sha256"] = get_spec(TINY).sha256
    (copy / MANIFEST).write_text(json.dumps(manifest))
    (copy / "adapter.gguf").write_bytes(b"GGUF broken")
    with pytest.raises(KgragError, match="SHA-256 does not match"):
        resolve_adapter(copy)


def test_resume_continues_the_step_count(tiny_ready: None, tmp_path: Path) -> None:
    common = {
        "train": TRAIN, "schema_path": CONLL_SCHEMA, "base": TINY, "out": tmp_path / "run", "limit": 8,
        "batch_size": 2, "grad_accum": 1, "dev_fraction": 0.0, "save_every": 1, "threads": 2,
    }  # fmt: skip
    first = Trainer(FinetuneSettings(**common, max_steps=2), show_progress=False).run()  # type: ignore[arg-type]
    assert first.steps == 2
    assert first.legs == 1 and 0 < first.total_seconds <= first.seconds
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
    with pytest.raises(KgragError, match="--resume"):
        Trainer(FinetuneSettings(**common, max_steps=4), show_progress=False).run()  # type: ignore[arg-type]
    with pytest.raises(KgragError, match="other settings"):
        Trainer(FinetuneSettings(**{**common, "learning_rate": 1e-3}, max_steps=4), show_progress=False).run(
            resume=True
        )  # type: ignore[arg-type]
    second = Trainer(FinetuneSettings(**common, max_steps=4), show_progress=False).run(resume=True)  # type: ignore[arg-type]
    assert second.steps == 4
    assert second.legs == 2 and second.total_seconds > first.total_seconds  # the manifest's time covers both legs
    log = json.loads((tmp_path / "run" / "training_log.json").read_text())
    assert [p["step"] for p in log["train"]] == [1, 2, 3, 4]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000003", "step-0000004"]


def test_cli_sets_the_lora_rank_and_layers(tiny_ready: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kgrag.cli import app

    out = tmp_path / "r4"
    args = ["finetune", "--train", str(TRAIN), "--schema", str(CONLL_SCHEMA), "--base", TINY, "--out", str(out),
            "--limit", "4", "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1", "--threads", "2",
            "--lora-r", "4", "--lora-alpha", "8", "--target-modules", "q_proj, v_proj"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], sorted(config["target_modules"])) == (4, 8.0, ["q_proj", "v_proj"])
    training = read_manifest(out).training
    assert (training["lora_r"], training["target_modules"]) == (4, ["q_proj", "v_proj"])


def test_gguf_lora_matches_peft_in_llama_cpp(tiny_ready: None, tmp_path: Path) -> None:
    """The converted adapter moves llama.cpp's logits the way PEFT moves transformers' logits
    (SmolLM2 is a llama-architecture model, so this also checks the q/k row permutation)."""
    import contextlib

    import torch
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model

    from kgrag.finetune.base_model import load_model, load_tokenizer
    from kgrag.finetune.gguf_lora import write_gguf_lora
    from kgrag.generator.registry import verified_gguf

    path, _ = verified_gguf(TINY)
    tokenizer = load_tokenizer(path)
    torch.manual_seed(0)
    model = get_peft_model(
        load_model(path), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj"], init_lora_weights=False)
    )
    with torch.no_grad():  # a change well above llama.cpp's activation-quantization noise
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn_like(param) * 0.1)
    ids = tokenizer("The capital of France is Paris, and the capital of Italy is", add_special_tokens=False)[
        "input_ids"
    ]
    with torch.no_grad():
        tuned = model(torch.tensor([ids])).logits[0, -1].numpy()
        with model.disable_adapter():
            plain = model(torch.tensor([ids])).logits[0, -1].numpy()
    lora = write_gguf_lora(
        lora_state(model),
        8,
        model.base_model.model.config,
        tmp_path / "a.gguf",
    )

    def last_logits(lora_path: str | None) -> np.ndarray:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
            llm = Llama(
                model_path=str(path), lora_path=lora_path, n_ctx=128, logits_all=True, n_threads=2, verbose=False
            )
        llm.eval(ids)
        return np.array(llm.scores[len(ids) - 1])

    delta_cpp = last_logits(str(lora)) - last_logits(None)
    delta_hf = tuned - plain
    assert np.corrcoef(delta_hf, delta_cpp)[0, 1] > 0.8
    assert 0.5 < np.linalg.norm(delta_cpp) / np.linalg.norm(delta_hf) < 2.5


@pytest.mark.model
@pytest.mark.parametrize(
    ("name", "base", "min_f1"),
    [
        # measured on these 20: 0.511 and 0.609 (0.570 and 0.579 on all 231; base models: see README)
        ("qwen2.5-0.5b-conll04", "qwen2.5-0.5b", 0.4),
        ("qwen2.5-1.5b-conll04", "qwen2.5-1.5b", 0.5),
    ],
)
def test_bundled_conll04_adapter_extracts_well_on_dev(name: str, base: str, min_f1: float) -> None:
    """Each shipped adapter (a base model + LoRA trained on CoNLL04 train) through the normal eval path."""
    from kgrag.evaluation.harness import evaluate_extraction
    from kgrag.generator.adapters import bundled_adapters

    assert name in bundled_adapters()
    if missing_packages(get_spec(base)):
        pytest.fail(f"the {base} model packages are missing: run scripts/setup.sh")
    dev = REPO.parent / "shared" / "data" / "conll04" / "dev.jsonl"
    settings = Settings(schema_path=CONLL_SCHEMA, model=name, n_threads=2)
    report = evaluate_extraction(dev, settings, limit=20, show_progress=False)
    assert report.invalid == 0 and report.config.model_identity.startswith(f"{base}@")
    assert f"+lora:{name}@" in report.config.model_identity
    assert report.strict.f1 >= min_f1
