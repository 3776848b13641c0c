"""Wall time and process CPU time of one timed region.

On a shared machine wall time swings with other people's load; the process's CPU time
(all its threads) barely does, so the harness reports both. On CUDA the clock waits for
the GPU's queued work before it stops, so a run is timed to its last kernel, not its last launch.
"""

import time

import torch


class Clock:
    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        if torch.cuda.is_initialized():
            torch.cuda.synchronize()
        return time.perf_counter() - self.wall, time.process_time() - self.cpu
