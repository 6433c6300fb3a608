"""all_reduce across 2 gloo processes on CPU equals one process over the union of the data."""
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seglab.metrics import SegmentationMetrics

C = 5


def data(rank):
    gen = torch.Generator().manual_seed(rank)
    low = torch.randint(0, C, (3, 1, 4, 4), generator=gen).float()
    target = torch.nn.functional.interpolate(low, size=(32, 32), mode="nearest")[:, 0].long()
    pred = torch.where(torch.rand(target.shape, generator=gen) < 0.2, torch.randint(0, C, target.shape, generator=gen),
                       target)
    target[:, :2] = 255
    return pred, target


def worker(rank, world, port, out_path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        metrics = SegmentationMetrics(C, boundary=True)
        metrics.update(*data(rank))
        metrics.all_reduce()
        if rank == 0:
            torch.save({"result": metrics.compute(), "matrix": metrics.dataset.matrix}, out_path)
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_reduce_two_gloo_processes(tmp_path):
    out_path = str(tmp_path / "rank0.pt")
    mp.spawn(worker, args=(2, free_port(), out_path), nprocs=2, join=True)
    got = torch.load(out_path)
    union = SegmentationMetrics(C, boundary=True)
    for rank in range(2):
        union.update(*data(rank))
    assert torch.equal(got["matrix"], union.dataset.matrix)
    want = union.compute()
    assert got["result"]["dataset"] == want["dataset"]
    assert got["result"]["per_image"]["num_images"] == 6
    for section in ("per_image", "boundary"):
        for key, value in want[section].items():
            if isinstance(value, float):
                assert abs(got["result"][section][key] - value) < 1e-12, (section, key)
            elif isinstance(value, list):
                assert all((a is None and b is None) or abs(a - b) < 1e-12
                           for a, b in zip(got["result"][section][key], value)), (section, key)
