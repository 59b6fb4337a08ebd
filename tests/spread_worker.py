"""``cxraug benchmark`` under torchrun with one process SIGKILLed at a fixed point of its work:
on its Nth run it stores, after result.json is staged and before predictions.npz is. The
process kills itself there, so the moment does not depend on how loaded the machine is.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/spread_worker.py \\
        KILL_RANK KILL_AT_STORE benchmark ARGS...

Used by tests/test_benchmark_spread.py.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np


def main() -> None:
    kill_rank, kill_at, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if int(os.environ["RANK"]) == kill_rank:
        save, stores = np.savez_compressed, []

        def save_or_die(*args, **kwargs) -> None:
            stores.append(1)
            if len(stores) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            save(*args, **kwargs)

        np.savez_compressed = save_or_die
    from cxraug.cli import main as cli

    cli(argv)


if __name__ == "__main__":
    main()
