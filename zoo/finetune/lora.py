"""LoRA through peft: wrap the family's targets, train the adapters and the head, save both
the adapter alone and the merged plain model.

Traps (NOTES.md): ``peft.get_peft_model`` changes the model in place, so callers that
need the original must copy it first; ``target_modules="all-linear"`` would also wrap
the classifier head, so the targets come from the finetune hooks (``lora_targets``) and
the head is trained in full through ``modules_to_save``. torch_geometric's conv layers
keep their weights in their own ``Linear`` (not ``torch.nn.Linear``), which peft refuses
as a target module: their hooks give ``target_parameters`` instead (experimental in peft
0.21). ``nn.LSTM``/``nn.GRU`` are not peft target modules either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from zoo.errors import UsageError

ADAPTER_DIR = "adapter"


def apply_lora(model: nn.Module, hooks: dict[str, Any], *, head: str | None, r: int = 8,
               alpha: int = 16, dropout: float = 0.0, targets: list[str] | None = None):
    """Wrap ``model`` with LoRA adapters (in place, as peft does); return the PeftModel."""
    from peft import LoraConfig, get_peft_model

    target_modules = list(targets or hooks.get("lora_targets") or [])
    target_parameters = list(hooks.get("target_parameters") or []) if not targets else []
    if head:
        # The head trains in full (modules_to_save); an adapter inside it as well would
        # survive merge_and_unload as stray lora_A/lora_B weights.
        target_modules = [t for t in target_modules
                          if t != head and not t.startswith(head + ".")]
        target_parameters = [t for t in target_parameters if not t.startswith(head + ".")]
    if not target_modules and not target_parameters:
        raise UsageError("the model declares no LoRA targets (finetune.lora_targets or "
                         "target_parameters); use --technique full/freeze, or name modules "
                         "with --lora-targets")
    kwargs: dict[str, Any] = dict(r=r, lora_alpha=alpha, lora_dropout=dropout)
    if target_modules:
        kwargs["target_modules"] = target_modules
    else:
        kwargs["target_modules"] = []
        kwargs["target_parameters"] = target_parameters
    if head:
        kwargs["modules_to_save"] = [head]
    try:
        return get_peft_model(model, LoraConfig(**kwargs))
    except (ValueError, TypeError) as e:
        what = target_modules or target_parameters
        raise UsageError(f"peft could not add LoRA to targets {what} "
                         f"({str(e).splitlines()[0]}); pick other --lora-target modules "
                         "or another technique") from None


def save_adapter(peft_model, out: Path) -> Path:
    """Write the adapter alone (adapter_config.json + adapter_model.safetensors).

    peft writes into a scratch folder that then replaces ``adapter/``, so a failed write
    (a full disk) leaves the previous adapter, or none, never half of one.
    """
    import os
    import shutil
    import tempfile

    target = Path(out) / ADAPTER_DIR
    scratch = Path(tempfile.mkdtemp(prefix=f".{ADAPTER_DIR}.", dir=out))
    os.chmod(scratch, 0o755)  # mkdtemp's 0700 would hide the adapter from other users
    old = target.with_name(f".{ADAPTER_DIR}.old")
    try:
        peft_model.save_pretrained(str(scratch))
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return target


def merge(peft_model) -> nn.Module:
    """Fold the adapters into the base weights; return the plain model (no peft inside)."""
    return peft_model.merge_and_unload()
