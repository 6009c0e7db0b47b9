"""Every ``agents`` entry: its contract (`lrtune.testing.AgentContract`) and, built for real in
RLlib, each optimizer role's rate read back from torch against its closed form, and each role's
state through a learner checkpoint. Parametrised over ``agents.names()``: a new agent is tested
by being registered."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from job_helpers import TINY_AGENT, env_for_agent
from lrtune.agents import get_agent
from lrtune.learners import build_algorithm_config
from lrtune.registry import agents
from lrtune.testing import AgentContract

AGENTS = agents.names()

BUDGET = 1000


class TestAgentEntry(AgentContract):
    """The agent contract over every registered agent."""

    @pytest.fixture(params=AGENTS)
    def plugin(self, request: pytest.FixtureRequest) -> tuple[str, str]:
        """Each ``("agents", name)`` in turn."""
        return ("agents", str(request.param))


def _policy_for(agent: str) -> tuple[dict[str, Any], dict[str, float]]:
    """A linear decay shared by the roles, each role with its own base rate; role -> rate."""
    roles = list(get_agent(agent).roles)
    rates = {role: 1e-4 * (i + 1) for i, role in enumerate(roles)}
    policy: dict[str, Any] = {
        "lr": rates[roles[0]],
        "schedule": {"name": "linear", "params": {"end_factor": 0.1}},
        "roles": {role: {"lr": rate} for role, rate in rates.items() if role != roles[0]},
    }
    return policy, rates


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
def test_each_role_applies_its_own_closed_form_rate(agent: str) -> None:
    policy, rates = _policy_for(agent)
    config = build_algorithm_config(
        agent,
        env_for_agent(agent),
        policy=policy,
        hyperparams=TINY_AGENT.get(agent, {}),
        budget=BUDGET,
    )
    algo = config.build_algo()
    try:
        result: dict[str, Any] = {}
        for _ in range(3):
            result = algo.train()
        metrics = result["lrtune"]
        step = metrics["lr_env_step"]
        assert step > 0
        factor = 1.0 - 0.9 * min(step, BUDGET) / BUDGET
        first = next(iter(rates))
        assert metrics["lr"] == pytest.approx(rates[first] * factor, rel=1e-9)
        if len(rates) > 1:
            for role, rate in rates.items():
                assert metrics[f"lr.{role}"] == pytest.approx(rate * factor, rel=1e-9)
        learner = algo.learner_group._learner
        # What torch holds, optimizer by optimizer, is its role's rate.
        for name, optimizer in learner._named_optimizers.items():
            role = learner._lrtune_optimizer_role[name]
            for group in optimizer.param_groups:
                assert group["lr"] == pytest.approx(rates[role] * factor, rel=1e-9), name
        # Every optimizer the agent declares exists, and nothing outside the roles.
        declared = {n for names in get_agent(agent).roles.values() for n in names}
        if declared != {"*"}:
            built = {name.removeprefix("default_policy_") for name in learner._named_optimizers}
            assert built == declared
        state = learner.get_state()["lrtune"]
        assert set(state["roles"]) == set(rates)
        learner.set_state(learner.get_state())
        for name, optimizer in learner._named_optimizers.items():
            role = learner._lrtune_optimizer_role[name]
            assert optimizer.param_groups[0]["lr"] == pytest.approx(rates[role] * factor)
    finally:
        algo.stop()


@pytest.mark.parametrize("agent", AGENTS)
def test_an_unknown_role_is_refused_naming_the_roles(agent: str) -> None:
    from lrtune.policies import PolicyError

    with pytest.raises(PolicyError, match=r"roles\.nope: agent .* roles are"):
        build_algorithm_config(
            agent, env_for_agent(agent), policy={"lr": 1e-3, "roles": {"nope": {"lr": 1e-4}}}
        )


def test_a_roles_own_plugin_that_the_agent_cannot_run_is_refused_where_it_is() -> None:
    """A trial's learner config (and ``lrtune train``) refuses a role's own plugin that the
    agent does not support, at the role's field, in the words a job's validation uses."""
    from lrtune.policies import LRPolicySpec, PolicyError

    policy = {"lr": 1e-3, "roles": {"critic": {"feedback": "kl_adaptive"}}}
    [(where, message)] = LRPolicySpec.model_validate(policy).agent_problems("sac")
    assert where == ("roles", "critic", "feedback", 0)
    assert "does not support agent 'sac' (it supports ppo)" in message
    with pytest.raises(PolicyError) as refused:
        build_algorithm_config("sac", env_for_agent("sac"), policy=policy)
    assert str(refused.value) == f"roles.critic.feedback.0: {message}."


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
def test_lrtunes_own_optimizer_step_gives_rllibs_weights(agent: str) -> None:
    """With finite gradients the learner steps its optimizers itself (no per-tensor NaN checks).
    Every update of two iterations is stepped both ways from the same weights, optimizer
    state and gradients: lrtune's step gives the weights of RLlib's `apply_gradients`, bit for
    bit. (Two separately built runs are not compared: their gradients may differ in the last
    bit on some CPUs, which Adam can turn into a different sign of a near-zero step.)"""
    policy, _ = _policy_for(agent)
    policy["gradients"] = {"name": "clip_global_norm", "params": {"max_norm": 0.5}}
    config = build_algorithm_config(
        agent,
        env_for_agent(agent),
        policy=policy,
        hyperparams=dict(TINY_AGENT[agent]),
        budget=BUDGET,
        seed=3,
    )
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        assert learner._lrtune_steps_itself  # no torch LR scheduler, no grad scaler
        optimizers = learner._named_optimizers.values()
        apply_gradients = learner.apply_gradients
        compared = []

        def both_ways(gradients: dict[Any, torch.Tensor]) -> None:
            weights = [p.detach().clone() for p in learner._params.values()]
            states = [copy.deepcopy(o.state_dict()) for o in optimizers]
            grads = {ref: g.clone() for ref, g in gradients.items()}
            apply_gradients(gradients)
            own = [p.detach().clone() for p in learner._params.values()]
            with torch.no_grad():
                for param, before in zip(learner._params.values(), weights, strict=True):
                    param.copy_(before)
            for optimizer, state in zip(optimizers, states, strict=True):
                optimizer.load_state_dict(state)
            learner._lrtune_steps_itself = False
            try:
                apply_gradients(grads)
            finally:
                learner._lrtune_steps_itself = True
            rllibs = [p.detach() for p in learner._params.values()]
            compared.append(all(bool((a == b).all()) for a, b in zip(own, rllibs, strict=True)))
            assert any(not bool((a == b).all()) for a, b in zip(own, weights, strict=True))

        learner.apply_gradients = both_ways
        algo.train()
        algo.train()
    finally:
        algo.stop()
    assert len(compared) > 1
    assert all(compared)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_modes_set_once_give_the_weights_of_rllibs_flips(
    agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lrtune's modules set train/eval mode when it changes (`ModeSetOnce`), not around every
    forward pass as RLlib's `TorchRLModule` does: the env runner's copy stays in eval mode, the
    learner's in train mode, and two iterations give RLlib's weights bit for bit."""
    from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

    from lrtune.learners._modules import ModeSetOnce

    weights = {}
    for set_once in (True, False):
        if not set_once:
            for name in ("forward_train", "forward_exploration", "forward_inference"):
                monkeypatch.setattr(ModeSetOnce, name, TorchRLModule.__dict__[name])
        hyperparams = dict(TINY_AGENT[agent])
        config = build_algorithm_config(
            agent,
            "CartPole-v1",
            policy={"lr": 1e-3},
            hyperparams=hyperparams,
            budget=BUDGET,
            seed=5,
        )
        algo = config.build_algo()
        try:
            algo.train()
            algo.train()
            learner = algo.learner_group._learner
            if set_once:
                assert algo.env_runner.module.inference_only
                assert not algo.env_runner.module.training
                assert learner.module["default_policy"].training
            weights[set_once] = [p.detach().clone() for p in learner._params.values()]
        finally:
            algo.stop()
    for own, rllibs in zip(weights[True], weights[False], strict=True):
        assert bool((own == rllibs).all())
