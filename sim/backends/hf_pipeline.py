"""A transformers text-generation pipeline on a local model directory; needs the `[hf]` extra."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from sim.backends.base import BackendConfig, Completion, LocalModelBackend, backends
from sim.errors import SimError, one_line
from sim.messages import ChatMessage, SamplingParams


@dataclass
class HFConfig(BackendConfig):
    """Schema of `backend=hf`."""

    _target_: str = "sim.backends.hf_pipeline.HFBackend"
    model_path: str = MISSING
    device: str = "cpu"
    torch_dtype: str = "auto"


@backends.register("hf", config=HFConfig)
class HFBackend(LocalModelBackend):
    """Runs the model's own chat template through `transformers.pipeline`; one request at a time, seeded per request."""

    def __init__(self, model_path: str, device: str, torch_dtype: str) -> None:
        path = Path(model_path).expanduser()
        if not (path / "config.json").is_file():
            raise SimError(f"backend.model_path: {path} is not a local transformers model directory (no config.json)")
        try:
            import torch
            import transformers
        except ImportError:
            raise SimError("backend=hf needs transformers and torch: pip install 'artifact-sim[hf]'") from None
        try:
            self._pipe = transformers.pipeline(
                "text-generation", model=str(path), device=device, dtype=torch_dtype
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise SimError(f"backend=hf: cannot load {path}: {one_line(str(exc), 200)}") from None
        self._torch = torch
        super().__init__(path)

    def generate(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Generate with the model's chat template; seeded through torch's global seed."""
        # The pipeline loads model, tokenizer and device; generating directly gives exact token counts and stop reason.
        model, tokenizer = self._pipe.model, self._pipe.tokenizer
        chat: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in messages]
        inputs = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        self._torch.manual_seed(params.seed)
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        with self._torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=params.max_tokens,
                pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
                # The raw logits of each step, before temperature and top-p reshape them: the model's own probabilities.
                output_logits=params.logprobs,
                return_dict_in_generate=True,
                **(sampling if params.temperature > 0 else {"do_sample": False}),
            )
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output.sequences[0][prompt_length:].tolist()
        stopped = bool(new_tokens) and new_tokens[-1] in _eos_ids(model, tokenizer)
        return Completion(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True),
            finish_reason="stop" if stopped else "length",
            prompt_tokens=prompt_length,
            completion_tokens=len(new_tokens),
            latency_ms=0.0,
            raw={"token_ids": new_tokens},
            token_logprobs=self._token_logprobs(output.logits, new_tokens) if params.logprobs else None,
        )

    def _token_logprobs(self, logits: tuple[Any, ...], tokens: list[int]) -> list[tuple[str, float]]:
        """Each generated token's text and log-probability under the model's raw logits of its step."""
        steps = self._torch.stack([step[0] for step in logits]).float()
        logprobs = self._torch.log_softmax(steps, dim=-1)[self._torch.arange(len(tokens)), self._torch.tensor(tokens)]
        return list(zip(token_texts(self._pipe.tokenizer, tokens), logprobs.tolist()))


def token_texts(tokenizer: Any, tokens: list[int]) -> list[str]:
    """The text each token adds to the decoded answer, so that the pieces joined are the answer's text; a token
    that ends in the middle of a character adds nothing, and the token that completes it adds the character."""
    pieces, decoded = [], ""
    for end in range(1, len(tokens) + 1):
        text = tokenizer.decode(tokens[:end], skip_special_tokens=True)
        if text.endswith("\ufffd"):
            pieces.append("")
            continue
        pieces.append(text[len(decoded):])
        decoded = text
    return pieces


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
