"""Two-process DistributedDataParallel training on the CPU with the gloo backend."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signattention_core.corpus.synthetic import write_demo_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]

# each rank trains through the library and records its final weights and history
WORKER = """
import json
import sys

import torch

from signattention_core.training import distributed_info, fit, state_dict_digest

corpus, out_dir, result_dir = sys.argv[1:4]
torch.set_num_threads(1)
config = {"D_MODEL": 16, "NHEAD": 2, "DIM_FEEDFORWARD": 32, "BATCH_SIZE": 8,
          "DROPOUT": 0.1, "EPOCHS": 3, "LR": 0.01, "SEED": 5}
result = fit(corpus, config, out_dir, device="cpu", progress=False)
rank = distributed_info().rank
record = {
    "rank": rank,
    "world_size": distributed_info().world_size,
    "digest": state_dict_digest(result.model),
    "history": result.history,
    "test_metrics": result.test_metrics is not None,
}
with open(f"{result_dir}/rank{rank}.json", "w", encoding="utf-8") as handle:
    json.dump(record, handle)
"""


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    return write_demo_corpus(tmp_path_factory.mktemp("corpus") / "small", seed=0, size="small")


def test_two_gloo_processes_agree(small_corpus, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    results = tmp_path / "results"
    results.mkdir()
    run = tmp_path / "run"

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(worker), str(small_corpus), str(run), str(results),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-4000:]

    records = [json.loads((results / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [record["world_size"] for record in records] == [2, 2]
    assert records[0]["digest"] == records[1]["digest"]

    # the statistics are summed over both processes, so both ranks log the same history
    assert records[0]["history"] == records[1]["history"]
    history = records[0]["history"]
    assert [row["train_samples"] for row in history] == [48, 48, 48]
    assert history[-1]["train_loss"] < history[0]["train_loss"]

    # only rank 0 writes the run folder and evaluates the test split
    assert [record["test_metrics"] for record in records] == [True, False]
    assert (run / "metrics.json").is_file()
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3
