"""Two gloo ranks against one process on the global batch: the autograd-aware gather, global minibatch
discrimination, global feature matching, synchronised batch norm, the helpers, and a few steps of the toy
trainer. One launch of tests/_dist_worker.py (both ranks, float64 except the toy trainer) feeds every test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _dist  # noqa: E402

WORKER = str(Path(__file__).with_name("_dist_worker.py"))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    finished = _dist.run([WORKER, str(out)], world_size=2, timeout=240)
    for f in finished:
        assert f.returncode == 0, f.output[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def close(a, b, atol=1e-12):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, atol) for x, y in zip(a, b, strict=True))
    return torch.allclose(a, b, rtol=0, atol=atol)


def max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def test_gather_forward_and_gradient_equal_single_process(ranks):
    for r, res in enumerate(ranks):
        g = res["gather"]
        assert torch.equal(g["forward"], g["X"])  # unequal sizes (3 and 5 rows) gathered in rank order
        assert g["local"] == ((0, 3), (3, 8))[r]
        # gradient of Σ_r L_r with respect to this rank's rows, every L_r using every row differently
        assert close(g["grad"], g["ref"], 1e-10)


def test_naive_gather_is_wrong_by_the_world_size(ranks):
    for res in ranks:
        g = res["gather"]
        assert close(g["sym_grad"], g["sym_ref"])
        assert close(g["sym_naive"] * 2, g["sym_ref"])  # keeping the local slice only: W times too small
        assert not close(g["sym_naive"], g["sym_ref"], 1e-3)


@pytest.mark.parametrize("weight_norm", [False, True])
def test_global_minibatch_discrimination_equals_one_process(ranks, weight_norm):
    for res in ranks:
        m = res["mbd"][weight_norm]
        assert m["hooks"] == 1
        assert close(m["y"], m["y_ref"], 1e-12)  # o(x) of the local rows against the global batch
        assert close(m["grads"], m["grads_ref"], 1e-12)  # after DDP's averaging
        assert close(m["xgrad"], m["xgrad_ref"], 1e-12)  # input grads: W × single-process (mean loss)
        # per-rank mode is a different statistic (B/W - 1 neighbours), documented in docs/distributed.md
        assert max_diff(m["grads_per_rank"], m["grads_ref"]) > 1e-3


@pytest.mark.parametrize("variant", ["l2sq", "l1"])
def test_global_feature_matching_equals_one_process(ranks, variant):
    losses = []
    for res in ranks:
        f = res["fm"][variant]
        assert f["global"]["loss"] == pytest.approx(f["ref"]["loss"], abs=1e-12)
        assert close(f["global"]["grads"], f["ref"]["grads"], 1e-12)
        assert max_diff(f["per-rank"]["grads"], f["ref"]["grads"]) > 1e-3
        losses.append(f["per-rank"]["loss"])
    # per-rank losses average to more than the global loss (the spread of the per-rank mean differences)
    assert sum(losses) / 2 > ranks[0]["fm"][variant]["ref"]["loss"]


@pytest.mark.parametrize("layer", ["bn1d", "bn2d", "nogain", "meanonly"])
def test_sync_batch_norm_equals_one_process(ranks, layer):
    for res in ranks:
        b = res["bn"][layer]
        ref = b["ref"]
        assert "SyncBatchNorm" in b["sync"]["types"]
        for mode, y_ref in (("sync", ref["y"]), ("single-converted", ref["y_full"])):
            got = b[mode]
            assert close(got["y"], y_ref, 1e-12), mode  # second step: uses the updated parameters
            assert close(got["grads"], ref["grads"], 1e-12), mode
            assert close(got["buffers"], ref["buffers"], 1e-12), mode  # running statistics
            assert close(got["eval"], ref["eval"], 1e-12), mode  # eval mode uses them
        assert max_diff(b["per-rank"]["grads"], ref["grads"]) > 1e-4


def test_helpers(ranks):
    for res in ranks:
        misc = res["misc"]
        assert misc["means"] == {"a": 0.5, "b": 2.0}
        assert torch.equal(misc["bcast"], torch.full((3,), 5.0))
        assert misc["obj"] == {"path": "from-rank-0"}
        assert misc["len"] == 2
    # the sampler: same permutation on both ranks (seed + epoch), step k's union is one process's batch k
    perm = ranks[0]["misc"]["perm"]
    for k in range(2):
        union = torch.cat([ranks[0]["misc"]["shards"][k], ranks[1]["misc"]["shards"][k]])
        assert torch.equal(union, perm[8 * k:8 * (k + 1)])


TOY_EXACT = ("baseline", "ls+ha+vbn", "mbd-global", "fm-global")


@pytest.mark.parametrize("case", TOY_EXACT + ("mbd-per-rank", "fm-per-rank"))
def test_toy_ranks_stay_identical(ranks, case):
    for k in ("G", "D"):
        assert torch.equal(ranks[0]["toy"][case]["params"][k], ranks[1]["toy"][case]["params"][k])
    assert ranks[0]["toy"][case]["history"] == ranks[1]["toy"][case]["history"]  # reduced metrics


@pytest.mark.parametrize("case", TOY_EXACT)
def test_toy_two_ranks_equal_one_process(ranks, case):
    """4 steps of the toy trainer (float32): 2 ranks × 8 rows against 1 process × 16 rows."""
    t = ranks[0]["toy"][case]
    for k in ("G", "D"):
        assert torch.allclose(t["params"][k], t["ref"][k], rtol=0, atol=2e-6), k
    for got, ref in zip(t["history"], t["ref_history"], strict=True):
        for key, value in ref.items():
            assert got[key] == (value if isinstance(value, str) else pytest.approx(value, abs=1e-5)), key


def test_toy_per_rank_modes_differ_from_one_process(ranks):
    mbd, fm = ranks[0]["toy"]["mbd-per-rank"], ranks[0]["toy"]["fm-per-rank"]
    assert float((mbd["params"]["D"] - mbd["ref"]["D"]).abs().max()) > 1e-3
    assert float((fm["params"]["G"] - fm["ref"]["G"]).abs().max()) > 1e-5  # FM acts on G's loss only


def test_historical_average_identical_on_both_ranks(ranks):
    (a0, n0), (a1, n1) = ranks[0]["toy"]["ls+ha+vbn"]["ha"], ranks[1]["toy"]["ls+ha+vbn"]["ha"]
    assert n0 == n1 == 4 and torch.equal(a0, a1)
