"""Learner update on CUDA vs CPU through lrtune's own plugins (torch only, no Ray).

What one lrtune learner update does on a PPO-sized actor-critic: forward, clipped-surrogate +
value loss, backward, the policy's gradient gate (clip_global_norm), the policy's optimizer step
with the rate lrtune sets, and the read-back check of that rate. Run per optimizer and batch
size; prints ms per update and samples/s on each device, and checks that one update on CUDA
matches the same update on the CPU (float32 with TF32 off; relative parameter error).
RLlib is not needed: the device machine has torch but no Ray, so this measures the torch part of
the learner's update, which is what a GPU share buys.

Run: ``python benchmarks/gpu_update.py [--batches 512 2048 ...] [--cpu-max-batch 8192]``
(``PYTHONPATH=platform`` where lrtune is not installed).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from lrtune.policies import LRPolicySpec

OBS, ACTIONS, HIDDEN = 64, 8, (256, 256)


class ActorCritic(nn.Module):
    """RLlib's default MLP shape: separate pi and vf towers."""

    def __init__(self) -> None:
        super().__init__()

        def tower(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(OBS, HIDDEN[0]),
                nn.Tanh(),
                nn.Linear(HIDDEN[0], HIDDEN[1]),
                nn.Tanh(),
                nn.Linear(HIDDEN[1], out),
            )

        self.pi, self.vf = tower(ACTIONS), tower(1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pi(obs), self.vf(obs).squeeze(-1)


def batch(n: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    data = {
        "obs": torch.randn(n, OBS, generator=g),
        "actions": torch.randint(0, ACTIONS, (n,), generator=g),
        "old_logp": -torch.rand(n, generator=g) * 2.0,
        "advantages": torch.randn(n, generator=g),
        "returns": torch.randn(n, generator=g) * 10.0,
    }
    return {k: v.to(device) for k, v in data.items()}


def ppo_loss(model: ActorCritic, b: dict[str, torch.Tensor]) -> torch.Tensor:
    logits, values = model(b["obs"])
    logp = torch.distributions.Categorical(logits=logits).log_prob(b["actions"])
    ratio = torch.exp(logp - b["old_logp"])
    surrogate = torch.min(ratio * b["advantages"], ratio.clamp(0.8, 1.2) * b["advantages"])
    return -surrogate.mean() + 0.5 * (values - b["returns"]).pow(2).mean()


def make(
    optimizer: str, device: str, seed: int = 0, model: ActorCritic | None = None
) -> tuple[ActorCritic, object, object, float]:
    """A model (or the one given) with the optimizer and gate of an lrtune policy."""
    if model is None:
        torch.manual_seed(seed)
        model = ActorCritic().to(device)
    lr = {"sgd": 1e-2, "lars": 1.0}.get(optimizer, 3e-4)
    spec = LRPolicySpec.model_validate(
        {
            "lr": lr,
            "optimizer": optimizer,
            "gradients": {"name": "clip_global_norm", "params": {"max_norm": 0.5}},
        }
    )
    policy = spec.build(budget=10**6)
    opt = policy.optimizer.build(list(model.parameters()), lr=policy.lr(0))
    return model, opt, policy.gate, policy.lr(0)


def update(
    model: ActorCritic, opt: object, gate: object, lr: float, b: dict[str, torch.Tensor]
) -> None:
    for group in opt.param_groups:  # type: ignore[attr-defined]
        group["lr"] = lr  # what the learner does before every update
    opt.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
    ppo_loss(model, b).backward()
    params = [p for p in model.parameters() if p.grad is not None]
    gate.apply([p.grad for p in params], params)  # type: ignore[attr-defined]
    opt.step()  # type: ignore[attr-defined]
    for group in opt.param_groups:  # type: ignore[attr-defined]
        assert group["lr"] == lr, "the optimizer changed the rate lrtune set"


def time_updates(optimizer: str, n: int, device: str, reps: int) -> float:
    model, opt, gate, lr = make(optimizer, device)
    b = batch(n, device)
    for _ in range(3):
        update(model, opt, gate, lr, b)
    times = []
    for _ in range(reps):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            update(model, opt, gate, lr, b)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            update(model, opt, gate, lr, b)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def agreement(optimizer: str) -> float:
    """Relative parameter error of 3 updates on CUDA against the same on the CPU."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu_model, cpu_opt, gate, lr = make(optimizer, "cpu")
    gpu_model, gpu_opt, _, _ = make(optimizer, "cuda", model=copy.deepcopy(cpu_model).to("cuda"))
    for step in range(3):
        update(cpu_model, cpu_opt, gate, lr, batch(1024, "cpu", seed=step))
        update(gpu_model, gpu_opt, gate, lr, batch(1024, "cuda", seed=step))
    num = sum(
        (a - b.cpu()).pow(2).sum()
        for a, b in zip(cpu_model.parameters(), gpu_model.parameters(), strict=True)
    )
    den = sum(a.detach().pow(2).sum() for a in cpu_model.parameters())
    return float((num / den).sqrt())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[512, 2048, 8192, 32768, 131072])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "lamb", "lars", "sgd"])
    parser.add_argument("--cpu-max-batch", type=int, default=8192)
    parser.add_argument("--cpu-threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.cpu_threads)
    cuda = torch.cuda.is_available()
    print(
        f"torch {torch.__version__}, cuda {cuda}"
        + (f" ({torch.cuda.get_device_name(0)})" if cuda else "")
        + f", cpu threads {args.cpu_threads}"
    )
    if cuda:
        for name in args.optimizers:
            print(f"agreement {name}: relative parameter error CUDA vs CPU = {agreement(name):.2e}")
    print(
        f"{'optimizer':<9} {'batch':>7} {'cpu ms':>9} {'cuda ms':>9} {'cuda samples/s':>15} speedup"
    )
    for name in args.optimizers:
        for n in args.batches:
            cpu = (
                time_updates(name, n, "cpu", max(3, args.reps // 5))
                if n <= args.cpu_max_batch
                else float("nan")
            )
            gpu = time_updates(name, n, "cuda", args.reps) if cuda else float("nan")
            print(
                f"{name:<9} {n:>7} {cpu:>9.2f} {gpu:>9.3f} {n / gpu * 1e3 if cuda else 0:>15.0f} "
                f"{cpu / gpu if cuda else float('nan'):>6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
