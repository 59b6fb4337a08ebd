"""Checkpoint files that prove themselves: written atomically, a sha256 beside each, loaded
as tensors only.

``step-0000500.pt.sha256`` is written first, then ``step-0000500.pt`` whole (temporary name +
rename), so every checkpoint file has its checksum. On resume the newest checkpoint that passes
is used (one without a checksum is not); a truncated, bit-flipped or code-carrying one is skipped with a
message saying which and why, and the previous one is tried. The payload is opaque here (the
training loop decides its keys); it must hold tensors, numbers, strings, lists and dicts only.
"""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxraug import runs
from cxraug.errors import UserError
from cxraug.fsutil import atomic_write_bytes, atomic_write_text, short

SUFFIX = ".sha256"


class BadCheckpoint(Exception):
    """A checkpoint file that must not be used (the message says why)."""


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write the checksum of ``payload`` and then ``payload`` to ``path``; a crash between the
    two leaves only a checksum without its file (never listed) and the previous checkpoint intact."""
    import torch

    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    atomic_write_text(checksum_path(path), f"{sha256_bytes(data)}  {path.name}\n")
    atomic_write_bytes(path, data)


def prune(run: Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints (and their checksums); drop the temporary files
    of writes a crash interrupted (the run's lock says no other writer is at work)."""
    for _, old in runs.checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
        checksum_path(old).unlink(missing_ok=True)
    for tmp in (run / runs.CKPT_DIR).glob(".step-*.tmp"):
        tmp.unlink(missing_ok=True)


def _expected_sha(path: Path) -> str:
    """The recorded checksum (the writer puts it down before the checkpoint itself)."""
    side = checksum_path(path)
    if not side.is_file():
        raise BadCheckpoint(f"it has no checksum file {side.name}, so it cannot be verified")
    text = side.read_text(errors="replace").split()
    if not text or len(text[0]) != 64:
        raise BadCheckpoint(f"its checksum file {side.name} is damaged")
    return text[0]


def read(path: Path) -> dict[str, Any]:
    """The payload of one checkpoint, verified; :class:`BadCheckpoint` if it must not be used."""
    import pickle

    import torch

    data = Path(path).read_bytes()
    expected = _expected_sha(path)
    if sha256_bytes(data) != expected:
        raise BadCheckpoint(f"checksum mismatch ({len(data)} bytes: truncated or altered)")
    if not data.startswith((b"PK", b"\x80")):  # neither torch's zip format nor a legacy pickle
        raise BadCheckpoint(f"not a torch file (it starts {short(data[:16].decode(errors='replace'), 16)!r})")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refuses any object that would run code
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadCheckpoint(f"it holds more than tensors and would run code if loaded ({first[:120]})") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError) as e:  # a damaged archive, a foreign file
        raise BadCheckpoint(f"not a readable torch file ({type(e).__name__})") from None
    if not isinstance(payload, dict):
        raise BadCheckpoint("it does not hold a checkpoint dict")
    return payload


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_latest(run: Path, say: Callable[[str], None] = _stderr) -> tuple[int, dict[str, Any]] | None:
    """(step, payload) of the newest usable checkpoint of ``run``; None if it has none at all.

    Each unusable one is reported through ``say`` and skipped; if checkpoints exist but none
    is usable, that is a user-facing error (resuming from scratch would silently redo work).
    """
    found = runs.checkpoints(run)
    for step, path in reversed(found):
        try:
            return step, read(path)
        except BadCheckpoint as e:
            older = [s for s, _ in found if s < step]
            then = f"falling back to step {older[-1]}" if older else "no older checkpoint"
            say(f"warning: checkpoint {path} is unusable: {e}; {then}")
    if found:
        raise UserError(
            f"none of the {len(found)} checkpoint(s) in {run / runs.CKPT_DIR} is usable (see the warnings above); "
            "start a new run"
        )
    return None
