"""EpochSampler: reproducible per epoch, split over ranks, resumable mid-epoch."""
import pytest

from damo_pipeline.engine.sampler import EpochSampler


def test_reproducible_and_different_per_epoch():
    a, b = EpochSampler(10, seed=5), EpochSampler(10, seed=5)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(4)
    assert list(a) != list(b)


def test_ranks_cover_everything_with_padding():
    shards = []
    for rank in range(3):
        s = EpochSampler(10, rank=rank, world_size=3, seed=1)
        s.set_epoch(0)
        shards.append(list(s))
    assert all(len(x) == 4 for x in shards)
    assert set(sum(shards, [])) == set(range(10))


def test_skip_continues_the_same_order():
    s = EpochSampler(9, seed=2)
    s.set_epoch(1)
    full = list(s)
    s.set_epoch(1, skip=4)
    assert list(s) == full[4:] and len(s) == 5
    with pytest.raises(ValueError):
        s.set_epoch(1, skip=10)
    with pytest.raises(ValueError, match="empty"):
        EpochSampler(0)
