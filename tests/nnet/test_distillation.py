"""Teachers and student training on a synthetic task."""

import torch

from asrdistill.losses import softmax_with_temperature
from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.teachers import CachedTeacher, OnlineTeacher
from asrdistill.nnet.trainer import TrainConfig, evaluate, train_stacked

from .synthetic import synthetic_store

CFG = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=2, hidden_dim=32, num_outputs=6)


def test_cached_teacher_equals_online_and_topk_keeps_the_top():
    store = synthetic_store()
    teacher = OnlineTeacher(StackedDnn(CFG, [0, 1, 2]))
    idx = torch.randint(0, store.num_frames, (2, 16))
    x = store.windows(idx.reshape(-1), 2, 1).view(2, 16, -1)
    temps = torch.tensor([1.0, 4.0])
    online = teacher.soft_targets(x, idx, temps)
    full = CachedTeacher.build(teacher, store, top_k=0)
    torch.testing.assert_close(full.soft_targets(None, idx, temps), online, atol=2e-3, rtol=1e-2)  # float16 cache
    top = CachedTeacher.build(teacher, store, top_k=3)
    p = top.soft_targets(None, idx, temps)
    assert torch.allclose(p.sum(-1), torch.ones(2, 16))
    top3 = online.topk(3, dim=-1).indices  # the cached top 3 keep the teacher's order and mass ranking
    assert torch.equal(p.topk(3, dim=-1).indices.sort(-1).values, top3.sort(-1).values)
    assert 0 < top.dropped_mass() < 1
    assert full.nbytes() == store.num_frames * 6 * 2 and top.nbytes() == store.num_frames * (3 * 2 + 3 * 2 + 4)
    # online soft targets are the tempered log of the ensemble's mean posterior
    logp = torch.log_softmax(teacher.model(x.reshape(32, -1)), -1).exp().mean(0).log()
    torch.testing.assert_close(online[1], softmax_with_temperature(logp.view(2, 16, -1)[1], 4.0), atol=1e-5, rtol=1e-4)


def test_distilled_student_learns_from_soft_targets_only(tmp_path):
    store, dev = synthetic_store(num_utts=150), synthetic_store(num_utts=40, seed=1)
    tc = TrainConfig(num_members=2, batch_size=64, max_epochs=15, warmup_steps=20, lr=3e-3, patience=5)
    ens = StackedDnn(CFG, [0, 1])
    train_stacked(ens, store, dev, tc, tmp_path / "teacher", progress=False)
    teacher = OnlineTeacher(ens)
    cache = CachedTeacher.build(teacher, store)
    temperature = torch.tensor([2.0, 2.0])

    def loss_fn(logits, idx, y):  # soft targets only: the student never sees a label
        p = cache.soft_targets(None, idx, temperature)
        return -(p * torch.log_softmax(logits / 2.0, -1)).sum(-1).mean(1) * 4.0

    student = StackedDnn(CFG, [7, 8])
    train_stacked(student, store, dev, tc, tmp_path / "student", loss_fn, progress=False)
    s = evaluate(student, dev, 2, 1, torch.device("cpu"))
    t = evaluate(ens, dev, 2, 1, torch.device("cpu"))
    assert min(s["members"]) > t["mean_member"] - 0.05
