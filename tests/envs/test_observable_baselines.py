"""Baselines a real system could run: observations and clicks only; they learn, beat random."""

from __future__ import annotations

import numpy as np
import pytest

from lrtune.envs import BatchedRecSysEnv, RecSysEnv
from lrtune.envs.baselines import (
    BASELINE_SEES,
    BASELINES,
    BaselineResult,
    LinUCBBandit,
    ObservationLayout,
    evaluate_baseline,
    evaluate_policy,
    greedy_actions,
    observable_myopic_action,
    observable_myopic_actions,
    oracle_actions,
    session_groups,
)

OBSERVABLE = ("observable_myopic", "bandit")


def test_every_baseline_says_what_it_sees() -> None:
    assert set(BASELINE_SEES) == set(BASELINES)
    assert set(OBSERVABLE) <= set(BASELINES)


def test_layout_comes_from_the_spaces() -> None:
    assert ObservationLayout.of(RecSysEnv()) == ObservationLayout(10, 10)
    hard = BatchedRecSysEnv(4, preset="hard")
    layout = ObservationLayout.of(hard)
    assert layout == ObservationLayout(16, 10)
    obs, _ = hard.reset(seed=0)
    cand = layout.candidates(obs)
    assert cand.shape == (4, 10, 17)
    # Candidate k's appeal is the last number of its block: the catalog's appeal of that item.
    appeal = hard.model.catalog.appeal[hard.candidate_items()]
    np.testing.assert_array_equal(cand[..., -1], appeal)
    np.testing.assert_array_equal(layout.history(obs), np.zeros((4, 16), np.float32))


@pytest.mark.parametrize("name", OBSERVABLE)
def test_deterministic_given_the_seed(name: str) -> None:
    a = evaluate_baseline(name, num_sessions=200, seed=3)
    b = evaluate_baseline(name, num_sessions=200, seed=3)
    c = evaluate_baseline(name, num_sessions=200, seed=4)
    np.testing.assert_array_equal(a.clicks, b.clicks)
    np.testing.assert_array_equal(a.steps, b.steps)
    assert not np.array_equal(a.clicks, c.clicks)


def test_observable_choices_ignore_hidden_state() -> None:
    """Same observations, different hidden interest: greedy/oracle change, observable ones not."""
    venv = BatchedRecSysEnv(512)
    layout = ObservationLayout.of(venv)
    bandit = LinUCBBandit(layout)
    obs, _ = venv.reset(seed=7)
    for _ in range(5):  # some history in the observations, a trained bandit
        actions = bandit.actions(obs)
        next_obs, *_ = venv.step(actions)
        bandit.update(obs, actions, venv.last_clicks, ~venv.session_done)
        obs = next_obs
    before = {
        "greedy": greedy_actions(venv),
        "oracle": oracle_actions(venv),
        "observable_myopic": observable_myopic_actions(obs, layout),
        "bandit": bandit.actions(obs),
    }
    interest = venv._interest  # hidden state, perturbed in place: users get others' interests
    interest[:] = np.roll(interest, 1, axis=0)
    after = {
        "greedy": greedy_actions(venv),
        "oracle": oracle_actions(venv),
        "observable_myopic": observable_myopic_actions(obs, layout),
        "bandit": bandit.actions(obs),
    }
    assert (before["greedy"] != after["greedy"]).mean() > 0.2  # the perturbation matters
    assert (before["oracle"] != after["oracle"]).mean() > 0.2
    for name in OBSERVABLE:
        np.testing.assert_array_equal(before[name], after[name])


def test_evaluated_bandit_uses_only_observations_and_clicks() -> None:
    """A loop that hands the bandit nothing but observations and clicks gives the same result."""
    n, seed = 300, 11
    reference = evaluate_baseline("bandit", num_sessions=n, seed=seed)
    envs, seeds = session_groups(n, seed)
    assert len(envs) > 1 and sum(env.num_envs for env in envs) == n
    bandit = LinUCBBandit(ObservationLayout.of(envs[0]))
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
    done = [np.zeros(env.num_envs, dtype=bool) for env in envs]
    clicks = [np.zeros(env.num_envs) for env in envs]
    while not all(d.all() for d in done):
        step = []
        for i, env in enumerate(envs):
            if done[i].all():
                continue
            actions = bandit.actions(obs[i])  # the observations only: no env, no hidden state
            next_obs, _, term, trunc, _ = env.step(actions)
            clicked = env.last_clicks
            step.append((obs[i], actions, clicked, ~done[i]))
            clicks[i] += clicked * ~done[i]
            done[i] |= term | trunc
            obs[i] = next_obs
        bandit.update(*(np.concatenate(part) for part in zip(*step, strict=True)))
    np.testing.assert_array_equal(np.concatenate(clicks), reference.clicks)


def test_bandit_learns_appeal_and_beats_random() -> None:
    results = {
        name: evaluate_baseline(name, num_sessions=600, seed=2) for name in ("random", *OBSERVABLE)
    }
    rand = results["random"].clicks_ci()
    for name in OBSERVABLE:
        _, low, _ = results[name].clicks_ci()
        assert low > rand[2], (name, results[name].summary(), results["random"].summary())
    venv = BatchedRecSysEnv(600)
    bandit = LinUCBBandit(ObservationLayout.of(venv))
    obs, _ = venv.reset(seed=2)
    actions = bandit.actions(obs)
    venv.step(actions)
    bandit.update(obs, actions, venv.last_clicks)
    assert bandit.updates == 600
    assert bandit.theta[1] > 0  # clicks rise with the observed appeal


def test_single_env_forms_agree_with_batched() -> None:
    env = RecSysEnv()
    layout = ObservationLayout.of(env)
    bandit = LinUCBBandit(layout)
    batched = {name: evaluate_baseline(name, num_sessions=1000, seed=9) for name in OBSERVABLE}
    for name in OBSERVABLE:
        totals = []
        for s in range(150):
            obs, _ = env.reset(seed=20_000 + s)
            total, done = 0.0, False
            while not done:
                action = (
                    observable_myopic_action(obs, layout)
                    if name != "bandit"
                    else bandit.action(obs)
                )
                next_obs, reward, term, trunc, _ = env.step(action)
                if name == "bandit":
                    bandit.update_one(obs, action, float(reward) > 0)
                total += float(reward)
                done = term or trunc
                obs = next_obs
            totals.append(total)
        mean, low, high = BaselineResult.mean_ci(np.asarray(totals))
        ref = batched[name].clicks_ci()[0]
        assert low - 0.5 < ref < high + 0.5, (name, (mean, low, high), ref)


def test_bandit_rejects_bad_settings() -> None:
    layout = ObservationLayout(10, 10)
    with pytest.raises(ValueError, match="alpha"):
        LinUCBBandit(layout, alpha=-1.0)
    with pytest.raises(ValueError, match="ridge"):
        LinUCBBandit(layout, ridge=0.0)


def test_a_policy_is_evaluated_exactly_as_the_baselines() -> None:
    # A trained agent is scored by evaluate_policy: same sessions, groups and intervals.
    layout = ObservationLayout.of(RecSysEnv())
    seen: list[tuple[int, ...]] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.shape)
        return observable_myopic_actions(obs, layout)

    agent = evaluate_policy("agent", policy, num_sessions=60, seed=3)
    baseline = evaluate_baseline("observable_myopic", num_sessions=60, seed=3)
    assert agent.name == "agent"
    np.testing.assert_array_equal(agent.clicks, baseline.clicks)
    np.testing.assert_array_equal(agent.steps, baseline.steps)
    assert agent.group is not None and baseline.group is not None
    np.testing.assert_array_equal(agent.group, baseline.group)
    assert agent.clicks_ci() == baseline.clicks_ci()
    assert all(
        len(shape) == 2 and shape[1] == RecSysEnv().observation_space.shape[0] for shape in seen
    )
    worse = evaluate_policy(
        "first", lambda obs: np.zeros(len(obs), np.int64), num_sessions=60, seed=3
    )
    assert worse.clicks.mean() < agent.clicks.mean()  # a different policy, a different score
    with pytest.raises(ValueError, match="num_sessions"):
        evaluate_policy("agent", policy, num_sessions=1)
