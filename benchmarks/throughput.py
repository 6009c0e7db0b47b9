"""Env steps per second of one lrtune trial against Stable-Baselines3, same settings, one CPU.

What runs, alternating (lrtune PPO, SB3 PPO, lrtune DQN, SB3 DQN, then again, ``--reps`` times)
so that drift in machine load hits both sides alike:

* **lrtune**: a one-trial job with a fixed LR policy (Adam, constant 3e-4 PPO / 1e-4 DQN) through
  lrtune's real trial path, `lrtune.running.run_job`: Ray Tune, `LRTuneTrainable`, RLlib on the
  new API stack, MLflow (sqlite in a temporary folder), checkpoints as the job's
  ``trials.checkpoint_seconds`` or ``trials.checkpoint_env_steps`` says
  (``--checkpoint-seconds``, ``--checkpoint-env-steps``; left out, the job's default: one per
  60 s of training since 2026-12-03, after every iteration before, and in every figure below
  — ``--checkpoint-seconds 0`` now). The trial holds
  one CPU; Ray sets the actor's ``OMP_NUM_THREADS`` to 1 and lrtune's learner sets torch's
  threads to 1. Env steps/s = the trial's env steps / its ``trial_seconds`` (wall time from the
  end of ``setup`` — algorithm built — to its last result: sampling, updates, evaluation,
  checkpoints and the time Tune takes between iterations all count).
* **SB3**: ``PPO`` / ``DQN`` ``.learn(total_timesteps)`` in this process with
  ``torch.set_num_threads(1)``; env steps/s = steps / wall time of ``learn`` (model built first,
  not timed).

Same settings on both sides (CartPole-v1, MLP 64-64 tanh, Adam):

* PPO: 16 envs × 128 steps = a 2048-step batch, minibatch 256, 10 epochs, γ 0.99, λ 0.95,
  clip 0.2, no entropy bonus, value-loss weight 0.5, separate policy and value networks
  (``model.vf_share_layers: false``), no observation normalisation.
* DQN: 4 envs, an update round every 4 vector steps (16 env steps) with 2 gradient steps of 128
  (SB3 ``train_freq=4, gradient_steps=2``; RLlib ``rollout_fragment_length=4``,
  ``training_intensity=16``), uniform replay of 50k, learning starts at 1,000 env steps, hard
  target update every 2,000 env steps, 3-step returns, ε 1 → 0.05 over 10k env steps, plain
  Q network (no double Q, no dueling heads: SB3 has neither). lrtune replays from its
  `TransitionReplayBuffer` (the presets' buffer since 2026-12-05); a third DQN run per rep
  uses RLlib's ``EpisodeReplayBuffer`` instead (``--no-episode-buffer`` leaves it out), the
  buffer lrtune's DQN used before, measured side by side.

A third PPO run per rep gives the env runner RLlib's default, per-item module-to-env
pipeline (``add_default_connectors_to_module_to_env_pipeline: true``) in place of lrtune's
batched one, which every ``Discrete``-action env gets since 2026-12-05
(``--no-default-pipeline`` leaves it out).

Last lines: ``... flat_over_episode=<lrtune's buffer / RLlib's, env steps/s>``,
``... batched_over_default=<lrtune's pipeline / RLlib's>``, then
``ppo_ratio=<lrtune/SB3 env steps/s> dqn_ratio=<...>`` (medians over the reps; goal ≥ 1.0
each).

Measured 2026-12-08 02:54-02:58 UTC, ``--reps 3``, on fac7fdc, nothing else running (load
0.7-1.05): PPO lrtune 8,161 / 7,677 / 7,866 env steps/s, SB3 9,249 / 8,960 / 9,016; DQN lrtune
2,523 / 2,784 / 2,521, SB3 5,323 / 5,370 / 5,473 (``flat_over_episode=6.51``,
``batched_over_default=1.10``, ``ppo_ratio=0.872 dqn_ratio=0.470``). Then one DQN rep at a
time (``--agents dqn --reps 1 --no-episode-buffer``), alternating a worktree of 6c03e69 (0.589
below) and fac7fdc, 02:58-03:00 UTC: lrtune 3,067 / 3,311 (6c03e69) and 3,079 / 3,071
(fac7fdc) env steps/s, SB3 5,282-5,518, ratios 0.56-0.60. So DQN's code is as fast as it
was; the same code ran 2,521-2,784 in the full run above, and I did not find why.

Measured 2026-12-07 11:51-11:55 UTC, ``--reps 3``, on b04d0b6, nothing else running (load
1.2-2.4): ``ppo_ratio=0.971 dqn_ratio=0.550``. That commit cut PPO's minibatches from the
sampled steps alone, dropping the rows RLlib appends to each episode chunk only to bootstrap
GAE's values (about 82 minibatch updates per iteration became 80; 1.03x less CPU per
iteration in one process); 0ddfb62 reverted it because it changed learning (worse greedy
returns on Acrobot-v1 over 17 paired seeds), so the PPO figures here are not the current
code's: PPO lrtune 8,832 / 7,473 / 8,335 env steps/s, SB3 8,887 / 7,857 / 8,584 (0.99, 0.95,
0.97). DQN's code is the current one: lrtune 2,837 / 2,757 / 2,937, SB3 5,161 / 5,058 / 5,423
(0.55, 0.55, 0.54), RLlib's episode buffer 397 / 398 / 388 (``flat_over_episode=7.15``).

Measured 2026-12-07 09:27-09:31 UTC, ``--reps 3``, on 6c03e69 (12df9f8's code, docstrings
since), a helper's training at nice 19 on the other core (load 1.8-2.6): PPO lrtune 7,942 /
8,310 / 7,636 env steps/s, SB3 8,838 / 8,875 / 8,809 (per rep 0.90, 0.94, 0.87); RLlib's
default module-to-env pipeline 6,624 / 7,079 / 7,109; DQN lrtune 3,230 / 3,072 / 2,942, SB3
5,219 / 5,121 / 5,404, RLlib's episode buffer 377 / 384 / 436. ``flat_over_episode=8.00``,
``batched_over_default=1.12``, ``ppo_ratio=0.899 dqn_ratio=0.589``; returns 167.0 and 9.9.
With the run below, PPO is at 0.90-1.00 of SB3 and DQN at 0.56-0.59 on the same code.

Measured 2026-12-07 08:47-08:52 UTC, ``--reps 3``, on 12df9f8, with a helper's training
(nice 19) on the other core (load 2.3-2.7), after lrtune's env runner began sampling without
RLlib's per-step bookkeeping (`lrtune.learners._env_runner.LRTuneEnvRunner`: no per-step
timers, no dm-tree unbatching, no ``on_episode_step`` calls when no callback acts on them; the
same episodes bit for bit, ``tests/learners/test_env_runner.py``). PPO lrtune 7,615 / 7,680 /
7,156 env steps/s, SB3 7,582 / 8,277 / 7,023 (per rep 1.00, 0.93, 1.02); RLlib's default
module-to-env pipeline (with lrtune's env runner too, so ``batched_over_default`` now compares
the pipelines alone) 6,406 / 6,602 / 6,431; DQN lrtune 2,431 / 2,671 / 2,518, SB3 4,475 /
4,620 / 4,251, RLlib's episode buffer 361 / 347 / 342. ``flat_over_episode=7.25``,
``batched_over_default=1.18``, ``ppo_ratio=1.004 dqn_ratio=0.563``; returns 167.0 and 9.9 as
before. The env runner alone, CPU time per ``sample()`` in one process, both loops alternating
in 8 blocks: PPO 100.5 -> 75.5 ms per 2,048 env steps (1.33x by the median of the blocks'
ratios), DQN 2.44 -> 1.95 ms per 16 env steps (1.26x). Where the rest goes, CPU time in one
process (wrappers around each piece, 10 iterations, two runs each side, back to back): lrtune's
PPO iteration 281 / 251 ms (sampling 75 / 70, the learner's update 198 / 174), SB3's 235 / 232
(``collect_rollouts`` 69 / 67, ``train`` 166 / 165); per DQN round of 16 env steps, lrtune 5.47
ms (sampling 2.10, the learner's update 2.73), SB3 3.35 (1.01 and 2.33). PPO's learner is
mostly torch's own kernels (backward, the forward passes, Adam's step); DQN's sampling pays
RLlib's episode objects per call (each ``sample()`` cuts, validates and converts its four
episode chunks).

Measured 2026-12-07 07:28-07:32 UTC, ``--reps 3``, on bf0ed69, nothing else running (load
1.0-1.4, the benchmark itself), after the PPO learner changes below and two DQN changes that
leave the episodes, weights and counters bit for bit: a flat-replay DQN iteration runs all its
rounds in one training step, the env runner's and the learner's metrics reduced once at its end
rather than after every 16-env-step round (`lrtune.learners._replay.FlatReplayTraining`,
``tests/learners/test_replay.py``), and lrtune's DQN module takes its greedy action as the argmax
of Q instead of building RLlib's ``TorchCategorical`` per vector step (the same epsilon-greedy
draws, ``tests/learners/test_batched_pipelines.py``). PPO lrtune 7,540 / 7,740 / 7,742 env
steps/s, SB3 9,189 / 8,882 / 9,270; RLlib's default module-to-env pipeline 6,631 / 6,375 /
6,805; DQN lrtune 2,803 / 2,724 / 2,939, SB3 5,464 / 4,395 / 5,499, RLlib's episode buffer
389 / 381 / 386. ``flat_over_episode=7.26``, ``batched_over_default=1.17``, ``ppo_ratio=0.842
dqn_ratio=0.513``. PPO's return is 167.0 as before; DQN's reads 9.9 (10.0 before) with the same
training: its ``episode_return_mean`` is now the mean over the iteration's episodes, where
RLlib's loop of one round per training step gave a mean of each sample's mean. The DQN changes
alone, in CPU time per ``algo.train()`` (about 1,000 env steps), one process alternating the
paths in 8 blocks (order flipped each block, load 4-6 from other work): the whole iteration in
one step 479 against 604 ms (median; 1.20x by the median of the blocks' ratios); per round of
16 env steps, in wrappers around each piece, 12.4 ms before (learner call 5.8 of which its
metrics ``reduce`` 0.83, sampling 4.5, the env runner's ``get_metrics`` 0.67, the algorithm's
``aggregate`` 0.58) and 9.7 ms after; the argmax exploration pass 122 against 178 us per
4-env call (about 3 % of a round; per iteration 1.17x and 1.01x in two A/B runs, within their
noise). SB3's DQN takes about 5 ms of CPU per 16 env steps at steady state in the same process;
the rest of lrtune's is the learner's per-update bookkeeping (RLlib's ``_update`` takes about
1.5x a plain torch loop through the same module) and RLlib's sampling loop (episodes,
callbacks, timers per vector step), which would mean replacing RLlib's private ``_sample``.

Measured 2026-12-07 06:11-07:20 UTC (branch ppo-lean, from b9f9819), after three learner
changes that leave the episodes, weights and reduced metrics bit for bit
(``tests/learners/test_lean_loss.py``, ``tests/learners/test_lean_update.py``): PPO's loss
takes torch's categorical kernels without RLlib's distribution objects
(`lrtune.learners._categorical.LeanCategorical`) and the learner sets the gradients to None
and backpropagates the loss itself (db66598, 8e6bc32 on main); the KL and entropy terms,
whose coefficients the presets set to 0, are computed outside autograd, their 0 × value
still added to the loss (7089c44, e730e2e on main); the flat minibatch cycle shuffles with
``index_select`` (c79e46f, 50739f8 on main). One PPO
``algo.train()`` (this file's settings over the presets, built by `build_algorithm_config`,
in-process env runner and learner), CPU time, nice 19, one process alternating the base
commit's learner and minibatch modules with the new ones (16 blocks of 2 iterations, load
1.3-2.3), thread time per piece, before -> after in ms: whole ``train()`` 293.7 -> 275.0, of
which ``env_runner.sample`` 92.4 -> 93.1, learner update 195.2 -> 175.9 = learner connectors
(GAE etc.) 5.6 -> 5.7, the 82 minibatch updates 173.0 -> 155.7 (forward 32.2 -> 31.9, loss
39.4 -> 37.1, zero + backward 62.4 -> 48.0, gradient norm and gating 6.9 -> 6.6, Adam step
29.9 -> 29.9), the minibatch cycle 10.3 -> 7.1, RLlib's per-minibatch bookkeeping (Prometheus
timer, ``_log_metrics``, ``_log_steps_trained_metrics``, ``_set_slicing_by_batch_id``) 3.5 ->
3.1, before/after-update hooks and the learner's ``reduce`` 1.8 -> 1.8; weight sync 1.3,
``Algorithm`` around ``training_step`` 2.7. Unwrapped, two runs of 24 blocks: 284.5 -> 265.2
and 338.4 -> 313.3 ms per ``train()`` (1.07x, 1.08x; learner update 184.7 -> 165.3 and 227.2
-> 200.4). In the same process alternating with SB3 (``collect_rollouts`` + ``train``, 10
blocks of 3): lrtune 272.8 ms, SB3 237.0 ms per 2,048 env steps (0.869; 0.811-0.825 before);
learner update 172.4 against SB3's ``train`` 167.4, sampling 92.9 against SB3's
``collect_rollouts`` 68.9: what is left is mostly RLlib's env runner (``_sample``: per env and
step ``add_env_step``, episode callbacks, ``unbatch``, its metrics and timers). A minibatch
update through RLlib's ``Learner._update`` against a plain loop over the same minibatches with
the same operations (forward, the same loss ops, backward, global norm, Adam; the same weights
bit for bit): 2.29 against 2.11 ms before, 1.84 against 1.66 ms after. One trial through
`run_job` (this file's ``lrtune_run``), the base commit (a worktree) and the branch
alternating, 8 reps each, 07:01-07:10 UTC, load 2.0-3.3: 4,357-6,611 against 5,165-7,422 env
steps/s (medians 5,416 and 6,277: 1.16x; per rep 0.93-1.35x, median 1.20x, faster in 7 of 8),
the same return in every run (167.0). Then ``--reps 3 --agents ppo --no-default-pipeline`` on
the branch, 07:10-07:13 UTC, load 2.6-4.6 (other work running): lrtune 5,166 / 5,623 / 5,588,
SB3 7,734 / 7,144 / 6,053, ``ppo_ratio=0.782``; again 07:14-07:17 UTC, load 5.7-7.6: lrtune
5,409 / 5,561 / 5,121, SB3 6,725 / 7,882 / 7,736, ``ppo_ratio=0.699``. Under that load the
trial (a Ray worker beside Tune's driver and Ray's own processes) loses more than SB3 in one
process, so neither compares with the quiet-machine 0.789 below; the CPU A/B above is this
change's measure.

Measured 2026-12-07 03:25-04:27 UTC, after the env runner's connector pipelines became one
piece each (`lrtune.learners._vector`: `BatchedObservations` in place of RLlib's five default
env-to-module pieces, `BatchedActions` in place of ``GetActions`` and ``TensorToNumpy``; the
same module inputs, episodes and weights bit for bit, ``tests/learners/
test_batched_pipelines.py``). Where a vector step went before (CPU time per piece, nice 19,
one process, RLlib's ``SingleAgentEnvRunner`` built by `build_algorithm_config` with this
file's settings; 134 vector steps per PPO ``sample()``, 4.5 per DQN one): PPO 1.25 ms per
vector step, of which module-to-env 0.32 (``GetActions`` 0.18, ``TensorToNumpy`` 0.05),
env-to-module 0.23 (its pieces 0.10, the pipeline's timers and length metrics the rest),
``env.step`` 0.23, the module's forward pass 0.14-0.21, episode callbacks 0.05,
``add_env_step`` 0.05, ``unbatch`` 0.04, ``to_numpy`` 0.03; DQN 1.0 ms, of which the
module's ε-greedy forward pass 0.32, env-to-module 0.19, ``env.step`` 0.12, module-to-env 0.12,
and per ``sample()`` call 0.7 ms of RLlib's bookkeeping (metrics, ``cut``, ``validate``,
``to_numpy``). In CPU time, one process alternating the two code paths (blocks of calls,
order flipped each block, load 1.4-2.4): PPO 121.4 -> 99.2 ms per 2,048-step ``sample()``
(1.23x), DQN 3.43 -> 2.94 ms per 16-step one (1.18x); per ``algo.train()`` PPO 357 -> 329
ms (1.08x), DQN 641 -> 568 ms per 1,010 env steps (noisy: another run of the env-to-module
change alone gave 0.98x). One trial through `run_job`, this file's ``lrtune_run``, the commit
before (the main checkout: 3ce52e6, from about 03:55 UTC 97eb24f, which changed only
`lrtune.specs`) and after alternating (order flipped each rep), 14 reps
each, 03:53-04:27 UTC, load 0.3-2.2: PPO 4,798-6,596 against 5,014-7,103 env steps/s (medians
5,824 and 6,106: 1.05x; per rep 0.88-1.34x, median 1.07x, faster in 10 of 14), DQN
1,171-1,973 against 1,392-2,200 (medians 1,641 and 1,753: 1.07x; per rep median 1.08x,
faster in 10 of 14); the same returns in every run (167.0 PPO, 10.0 DQN). Then the whole
benchmark, ``--reps 3``, on the change (5eb2280), 04:28-04:33 UTC, nothing else running (load
0.3-1.7, the benchmark itself): PPO lrtune 6,423 / 6,443 / 6,365 env steps/s, SB3 8,136 /
8,862 / 8,130; RLlib's default module-to-env pipeline 5,969 / 5,155 / 5,745; DQN lrtune
1,606 / 1,942 / 1,841, SB3 4,435 / 4,496 / 4,937, RLlib's episode buffer 353 / 360 / 342.
``flat_over_episode=5.22``, ``batched_over_default=1.12``, ``ppo_ratio=0.789
dqn_ratio=0.409``. The VM ran both sides about 2.6x faster than at 02:04 UTC (SB3 PPO median
8,136 against 3,175), so the rise from 0.725 / 0.385 is not all this change's; the A/B
above is its measure. The same returns as before (167.0 PPO, 10.0 and 9.3 DQN).

Measured 2026-12-07 02:43-02:48 UTC, PPO alone back to back (``--reps 3 --agents ppo
--no-default-pipeline``), nothing else running (load 0.8-1.3), before and after torch's
optimizers took their multi-tensor (``foreach``) kernels on CPU (the same weights bit for bit,
``tests/policies/test_optimizers.py``): c4aac9b (from a worktree) lrtune 2,390 / 2,321 / 2,307
env steps/s, SB3 3,131 / 3,175 / 3,123, ``ppo_ratio=0.741``; c4fcadf lrtune 2,422 / 2,418 /
2,418, SB3 3,001 / 3,077 / 3,197, ``ppo_ratio=0.786``: 1.04x lrtune's PPO env steps/s. The
same return, 167.0.

Measured 2026-12-07 01:55-02:04 UTC, ``--reps 3``, on c4aac9b, nothing else running (load
0.9-1.7, the benchmark itself), after lrtune's PPO learner began logging RLlib's per-minibatch
metrics once per update (the last minibatch's loss terms, summed step counts: the same reduced
results) and cutting its minibatches itself (`lrtune.learners._minibatches`: the same rows;
the same weights bit for bit, ``tests/learners/test_lean_update.py``): PPO lrtune 2,356 /
2,275 / 2,301 env steps/s, SB3 3,175 / 3,052 / 3,231; RLlib's default pipeline 2,092 / 2,127 /
2,164; DQN lrtune 740 / 793 / 752, SB3 1,950 / 2,108 / 1,881, RLlib's episode buffer 156 /
158 / 165. ``flat_over_episode=4.76``, ``batched_over_default=1.08``, ``ppo_ratio=0.725
dqn_ratio=0.385``. The VM ran both sides about 3x slower than on 2026-12-05 (SB3 PPO 3.1-3.2k
against 9.4-9.5k), so compare ratios across days. The same returns as before (167.0 PPO,
10.0 and 9.3 DQN). Then PPO alone, back to back (``--agents ppo --no-default-pipeline``), the
commit before the change (501b0b0, from a worktree) 02:05-02:08 UTC: lrtune 2,210 / 2,219 /
2,194, SB3 3,557 / 3,469 / 3,419, ``ppo_ratio=0.637``; c4aac9b 02:08-02:10 UTC: lrtune 2,669 /
2,575 / 2,639, SB3 3,674 / 3,453 / 3,434, ``ppo_ratio=0.764``: 1.19x lrtune's PPO env steps/s
with SB3 level (medians 3,469 and 3,453). In CPU time, in one process alternating the two
code paths on a fixed 2,158-row batch (2 shared cores, nice 19): 7.06 -> 5.43 ms per minibatch
update, 891 -> 766 ms per ``algo.train()`` iteration; in a later run, where the update took
5.5 ms, a plain torch loop over the same minibatches (forward, loss, backward, Adam step) took
3.6 ms.

Measured 2026-12-05 20:17-20:22 UTC, ``--reps 3``, nothing else running (load 1.1-1.6, the
benchmark itself), after the flat-replay DQN's training step began copying the learner's
weights into the env runner in place instead of RLlib's ``sync_weights`` (numpy, ``ray.put``,
``load_state_dict``: 1.5 ms of each 16-env-step training step, 0.15 ms now; the same weights
bit for bit, ``tests/learners/test_replay.py``): PPO lrtune 5,647 / 5,790 / 5,871 env steps/s,
SB3 9,432 / 9,496 / 9,503; RLlib's default pipeline 5,443 / 5,385 / 5,303; DQN lrtune 1,845 /
1,934 / 2,045, SB3 5,554 / 5,374 / 5,523, RLlib's episode buffer 412 / 403 / 407.
``flat_over_episode=4.75``, ``batched_over_default=1.08``, ``ppo_ratio=0.610
dqn_ratio=0.350``. The same returns as before (167.0 PPO, 10.0 and 9.3 DQN). PPO's path did not
change (its one sync per iteration is RLlib's); side by side in one process (alternating
iterations, load 3.2: the DQN grid of ``benchmarks/suite.py``'s docstring beside it) the copy
gave DQN 1.23x the env steps/s of RLlib's sync.

Measured 2026-12-05 08:21-08:26 UTC, ``--reps 3``, nothing else running (load 0.3-1.2, the
benchmark itself), after lrtune's learner began stepping its optimizers itself when the
gradients are finite and lrtune's PPO and DQN modules stopped resetting train/eval mode
around every forward pass (see `lrtune.learners._learner`, `lrtune.learners._modules`; the
same weights bit for bit): PPO lrtune 5,865 / 4,978 / 6,002 env steps/s, SB3 9,508 / 9,170 /
9,500; RLlib's default pipeline 5,302 / 5,411 / 5,031 (it gets the learner and module changes
too); DQN lrtune 1,802 / 1,625 / 1,487, SB3 5,615 / 5,438 / 5,474, RLlib's episode buffer
399 / 398 / 393. ``flat_over_episode=4.08``, ``batched_over_default=1.11``,
``ppo_ratio=0.617 dqn_ratio=0.297``. The same seeded returns as before (167.0 PPO, 10.0 and
9.3 DQN). Side by side in one process (alternating iterations, load 6-8), the two changes
gave PPO 1.075× and 1.065× per iteration and DQN 1.038× (the module change); DQN's ratio did
not move because SB3's DQN ran faster this time than in the runs below (5.4-5.6k against
3.2-5.0k).

Measured 2026-12-05 after the batched pipeline reached every Discrete-action env, nothing
else running (load 0.7-1.7, the benchmark itself):

* ``--reps 3`` (04:58-05:03 UTC, before the third PPO run existed): PPO lrtune 4,643 / 3,773
  / 4,397 env steps/s, SB3 9,060 / 8,742 / 8,292; DQN lrtune 1,282 / 1,271 / 1,132, SB3
  3,220 / 4,240 / 4,957, RLlib's episode buffer 322 / 283 / (median 322).
  ``flat_over_episode=3.95``, ``ppo_ratio=0.503 dqn_ratio=0.300``. SB3's DQN swung 3.2-5.0k
  (5.5-5.6k at 01:36 UTC), so the DQN ratio's rise from 0.263 is not all lrtune's.
* ``--reps 3 --agents ppo`` (05:04-05:06 UTC): lrtune 4,848 / 4,801 / 5,133, RLlib's pipeline
  4,480 / 4,328 / 4,357, SB3 8,565 / 8,875 / 9,330: ``batched_over_default=1.11``,
  ``ppo_ratio=0.546``. Both pipelines reached return 167.0: the same episodes.

Measured 2026-12-05 01:36-01:42 UTC, ``--reps 3``, the job's default checkpoint cadence,
nothing else running (load 1.2-2.0, the benchmark itself): PPO lrtune 4,890 / 4,868 / 4,442
env steps/s, SB3 9,305 / 9,153 / 9,335; DQN lrtune 1,463 / 1,487 / 1,361, SB3 5,560 / 5,577 /
5,513, lrtune on RLlib's episode buffer 398 / 384 / 393. ``flat_over_episode=3.73``,
``ppo_ratio=0.523 dqn_ratio=0.263``. The VM was about 2-3× faster than on 2026-12-04 (SB3
PPO 9.2-9.3k against 2.9-4.0k); the episode buffer's ratio to SB3 (393 / 5,560 = 0.071) is
the day before's 0.072. An earlier DQN-only run the same hour (01:18-01:22 UTC, load 0.3-1.1)
gave lrtune 1,680 / 1,533 / 1,487, episode buffer 423 / 402 / 400, SB3 5,606 / 5,530 / 5,632:
``flat_over_episode=3.82 dqn_ratio=0.273``. What is left of a training step of this DQN (16 env
steps, 2 updates; RLlib's own timers after 8 iterations, one process, 03:15 UTC, load 0.9):
11.2 ms, of which sampling 5.1 ms (RLlib's env runner: connectors, the module's exploration
forward, episode bookkeeping), the two updates through RLlib's learner 4.6 ms, the weight sync
to the env runner 1.1 ms and lrtune's buffer (add and sample) 0.3 ms. SB3 takes ~2.9 ms for
all of it (16 / 5,560 s), so RLlib's env runner alone costs more than SB3's whole step: ≥ 1.0
is out of reach without replacing it. The lrtune returns (10.0 flat, 9.3 episode buffer, SB3
not printed) are near-random play at this budget and lr 1e-4; they differ because the flat
buffer is seeded and samples differently, not in what it computes (see
`lrtune.learners._replay`).

Measured 2026-12-04 03:27-03:35 UTC, ``--reps 3`` with the job's default cadence (a checkpoint
once per 60 s of training: here only at each trial's end), nothing else running (load 1.0-1.7,
the benchmark itself): PPO lrtune 1,799 / 1,854 / 1,796 env steps/s, SB3 3,125 / 3,959 /
2,883; DQN lrtune 132 / 195 / 150, SB3 2,068 / 2,509 / 2,087.
``ppo_ratio=0.576 dqn_ratio=0.072``. Time outside ``step()``: 0.1 s of 22-23 s (PPO), 0.1-0.4
s of 62-92 s (DQN). The VM ran both sides about 3× slower than on 2026-12-02 (SB3 PPO 2.9-4.0k
against 10.9-11.1k then, at lower load), so compare ratios across days, not env steps/s; the
seeded lrtune runs reached the same returns as before (167.0 PPO, 9.3 DQN).

Measured before (2026-12-02, the project's 2-core VM, shared at the same time with other sessions'
tests and benchmarks: load average 2.6-14 on 2 cores, so single figures swing ±50%; the lrtune
runs of one budget use the same seed and reached the same training return — 167.0 PPO, 9.3 DQN
at 12k env steps — so only the timing moved):

* ``--reps 2`` (defaults: PPO 40,960, DQN 12,000 env steps; checkpoint after every iteration,
  DQN's with its replay buffer), 09:06-09:08 UTC, the quietest window (load 3.2 → 2.6, other
  sessions still running): PPO lrtune 5,188 / 4,599 env steps/s, SB3 11,052 / 10,913; DQN
  lrtune 384 / 376, SB3 6,324 / 5,578. ``ppo_ratio=0.446 dqn_ratio=0.064``. Outside
  ``step()``: PPO 0.7-1.0 s of 7.9-8.9 s, DQN 1.0 s of 32 s.
* ``--reps 3``, same settings, before DQN checkpoints carried the buffer, 08:39-08:46 UTC,
  load 7.6 → 9.5: PPO lrtune 2,579 / 2,985 / 1,572 env steps/s, SB3 3,007 / 5,798 / 3,044;
  DQN lrtune 190 / 154 / 179, SB3 1,949 / 1,986 / 2,093.
  ``ppo_ratio=0.847 dqn_ratio=0.090``. Time outside ``step()`` (checkpoints, Tune between
  iterations): PPO 1.6-2.0 s of 13.8-26.1 s (20 iterations), DQN 1.1-1.4 s of 64-79 s.
* the same with ``--checkpoint-env-steps 1000000`` (a checkpoint only at the end),
  08:46-08:52 UTC, load 9.5 → 14: PPO lrtune 2,491 / 2,079 / 2,385, SB3 8,675 / 9,069 / 2,717;
  DQN lrtune 180 / 236 / 132, SB3 2,967 / 5,571 / 1,553. ``ppo_ratio=0.275 dqn_ratio=0.061``
  (SB3 happened to get the cores). Outside ``step()``: PPO 0.6-0.7 s, DQN 0.4-0.7 s.
* DQN only, 20,000 env steps, one rep each, after DQN checkpoints began to carry the replay
  buffer (RLlib's own leave it out; see `lrtune.running._trainable.save_replay_buffer`),
  08:55-09:00 UTC, load 9.4 → 12.8: every iteration: lrtune 145/s with 7.0 s of 139 s outside
  ``step()`` (20 checkpoints of a growing buffer), SB3 4,465/s, ``dqn_ratio=0.032``;
  ``--checkpoint-env-steps 1000000``: lrtune 260/s with 0.6 s of 78 s outside ``step()``,
  SB3 5,609/s, ``dqn_ratio=0.046`` (load 6.8-12 during it).

So per-iteration checkpoints cost about 1 s in 20 PPO iterations (≈ 5 % of the trial) and
``trials.checkpoint_env_steps`` removes most of it, but they are not what separates lrtune from
SB3: RLlib's own iteration is. cProfile of the same PPO settings in one process (RLlib alone,
no Tune, 4 iterations): 1.16 s per 2,048-step iteration, of which sampling 0.46 s (RLlib's
connector pipelines: 1.1 s of the 4.7 s profiled) and the learner 0.68 s for its ≈ 83
minibatch updates (≈ 8 ms each: batch slicing, ``tree.map_structure``, ``Module.train()``
calls, the loss; backward and Adam ≈ 1.6 ms) — SB3 trains a whole iteration in 0.2-0.3 s.
DQN (2 iterations, times inflated by the profiler): 128 ms per training step of 16 env steps, of
which 31 ms per 128-transition replay sample (RLlib's ``EpisodeReplayBuffer`` slices one
``SingleAgentEpisode`` per sampled transition), 12 ms for the learner connector to build the
batch from those episodes and 3.4 ms for the gradient step itself: RLlib's new-stack DQN spends
most of its time in per-transition Python. The goal (ratio ≥ 1.0) is not reached: closing the
gap needs a vectorised replay buffer and lighter connector pipelines in RLlib (or larger
minibatches / fewer epochs, which change the algorithm), not less work per Tune result.

Run: ``.venv/bin/python benchmarks/throughput.py [--reps 3] [--ppo-steps 40960]
[--dqn-steps 12000] [--checkpoint-seconds S | --checkpoint-env-steps N]`` (needs the ``bench``
extra: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

PPO_HYPERPARAMS: dict[str, Any] = {
    "num_envs_per_env_runner": 16,
    "train_batch_size_per_learner": 2048,
    "minibatch_size": 256,
    "num_epochs": 10,
    "gamma": 0.99,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "entropy_coeff": 0.0,
    "vf_loss_coeff": 0.5,
}
DQN_EPSILON_STEPS = 10_000
DQN_HYPERPARAMS: dict[str, Any] = {
    "num_envs_per_env_runner": 4,
    "rollout_fragment_length": 4,
    "train_batch_size_per_learner": 128,
    "training_intensity": 16,
    "double_q": False,
    "dueling": False,
    "n_step": 3,
    "target_network_update_freq": 2_000,
    "replay_buffer_config": {"type": "lrtune.learners.TransitionReplayBuffer", "capacity": 50_000},
    "epsilon": [[0, 1.0], [DQN_EPSILON_STEPS, 0.05]],
    "num_steps_sampled_before_learning_starts": 1_000,
    "gamma": 0.99,
}
LR = {"ppo": 3e-4, "dqn": 1e-4}


def lrtune_run(
    agent: str,
    env_steps: int,
    folder: Path,
    name: str,
    cadence: dict[str, float],
    replay: str | None = None,
    default_pipeline: bool = False,
) -> dict[str, float]:
    """One trial through `run_job`: env steps, trial seconds, seconds inside ``step()``.
    ``replay`` swaps DQN's replay buffer type (RLlib's ``EpisodeReplayBuffer``);
    ``default_pipeline`` gives the env runner RLlib's per-item module-to-env pipeline in place
    of lrtune's batched one."""
    from lrtune.running import run_job
    from lrtune.specs import JobSpec

    hyperparams = dict(PPO_HYPERPARAMS if agent == "ppo" else DQN_HYPERPARAMS)
    if replay is not None:
        hyperparams["replay_buffer_config"] = {"type": replay, "capacity": 50_000}
    if default_pipeline:
        hyperparams["add_default_connectors_to_module_to_env_pipeline"] = True
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "agent": agent,
        "env": {"id": "CartPole-v1"},
        "model": {"hidden": [64, 64], "activation": "tanh", "normalize_observations": False},
        "policy": {"lr": LR[agent]},
        "budget": {"trial_env_steps": env_steps},
        "trials": {"num": 1, "max_concurrent": 1},
        "scheduler": {"name": "none"},
        "hyperparams": dict(hyperparams),
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    if agent == "ppo":
        data["model"]["vf_share_layers"] = False
    data["trials"].update(cadence)  # the checkpoint cadence (none given: the job's default)
    job = JobSpec.model_validate(data)
    outcome = run_job(job, stream=io.StringIO())
    (trial,) = outcome.trials
    if trial.status != "completed":
        raise RuntimeError(f"lrtune {agent} trial ended {trial.status}: {trial.error}")
    lines = (outcome.experiment_dir / f"trial_{trial.trial_id}" / "result.json").read_text()
    results = [json.loads(line) for line in lines.splitlines() if line.strip()]
    last = results[-1]
    return {
        "env_steps": float(last["env_steps"]),
        "seconds": float(last["trial_seconds"]),
        "step_seconds": sum(float(r["time_this_iter_s"]) for r in results),
        "iterations": float(len(results)),
        "return": float(last["episode_return_mean"]),
    }


def sb3_run(agent: str, env_steps: int, seed: int) -> dict[str, float]:
    """One SB3 ``learn`` on the same settings: env steps and wall seconds."""
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    policy_kwargs: dict[str, Any] = {"activation_fn": torch.nn.Tanh}
    if agent == "ppo":
        env = make_vec_env("CartPole-v1", n_envs=16, seed=seed)
        policy_kwargs["net_arch"] = {"pi": [64, 64], "vf": [64, 64]}
        model: Any = PPO(
            "MlpPolicy",
            env,
            learning_rate=LR["ppo"],
            n_steps=128,
            batch_size=256,
            n_epochs=10,
            gamma=0.99,
            gae_lambda=0.95,
            clip_range=0.2,
            ent_coef=0.0,
            vf_coef=0.5,
            max_grad_norm=1e9,  # lrtune's policy here clips nothing
            policy_kwargs=policy_kwargs,
            seed=seed,
            device="cpu",
        )
    else:
        env = make_vec_env("CartPole-v1", n_envs=4, seed=seed)
        policy_kwargs["net_arch"] = [64, 64]
        model = DQN(
            "MlpPolicy",
            env,
            learning_rate=LR["dqn"],
            buffer_size=50_000,
            learning_starts=1_000,
            batch_size=128,
            gamma=0.99,
            train_freq=4,
            gradient_steps=2,
            target_update_interval=2_000,
            n_steps=3,
            exploration_initial_eps=1.0,
            exploration_final_eps=0.05,
            exploration_fraction=min(1.0, DQN_EPSILON_STEPS / env_steps),
            max_grad_norm=1e9,
            policy_kwargs=policy_kwargs,
            seed=seed,
            device="cpu",
        )
    start = time.perf_counter()
    model.learn(total_timesteps=env_steps)
    seconds = time.perf_counter() - start
    env.close()
    return {"env_steps": float(model.num_timesteps), "seconds": seconds}


def rate(run: dict[str, float]) -> float:
    """Env steps per second of a run."""
    return run["env_steps"] / run["seconds"]


def main() -> None:
    """Alternate lrtune and SB3 runs; print each, then the median ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ppo-steps", type=int, default=40_960)
    parser.add_argument("--dqn-steps", type=int, default=12_000)
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=None,
        help="trials.checkpoint_seconds of the lrtune job (0: after every iteration)",
    )
    parser.add_argument(
        "--checkpoint-env-steps",
        type=int,
        default=None,
        help="trials.checkpoint_env_steps of the lrtune job",
    )
    parser.add_argument("--agents", default="ppo,dqn")
    parser.add_argument(
        "--no-episode-buffer",
        action="store_true",
        help="leave out the DQN run on RLlib's EpisodeReplayBuffer",
    )
    parser.add_argument(
        "--no-default-pipeline",
        action="store_true",
        help="leave out the PPO run on RLlib's default module-to-env pipeline",
    )
    args = parser.parse_args()
    agents = [a for a in args.agents.split(",") if a]
    cadence = {
        key: value
        for key, value in (
            ("checkpoint_seconds", args.checkpoint_seconds),
            ("checkpoint_env_steps", args.checkpoint_env_steps),
        )
        if value is not None
    }
    steps = {"ppo": args.ppo_steps, "dqn": args.dqn_steps}
    rates: dict[str, dict[str, list[float]]] = {a: {"lrtune": [], "sb3": []} for a in agents}
    print(f"load before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lrtune-throughput-") as tmp:
        for rep in range(args.reps):
            for agent in agents:
                ours = lrtune_run(agent, steps[agent], Path(tmp), f"tp-{agent}-{rep}", cadence)
                theirs = sb3_run(agent, steps[agent], seed=rep)
                rates[agent]["lrtune"].append(rate(ours))
                rates[agent]["sb3"].append(rate(theirs))
                # The same trial on RLlib's component that lrtune replaces, side by side.
                variant: tuple[str, str, dict[str, Any]] | None = None
                if agent == "dqn" and not args.no_episode_buffer:
                    variant = (
                        "episode_buffer",
                        "replay=EpisodeReplayBuffer",
                        {"replay": "EpisodeReplayBuffer"},
                    )
                elif agent == "ppo" and not args.no_default_pipeline:
                    variant = ("default_pipeline", "pipeline=default", {"default_pipeline": True})
                if variant is not None:
                    key, label, options = variant
                    other = lrtune_run(
                        agent, steps[agent], Path(tmp), f"tp-{key}-{rep}", cadence, **options
                    )
                    rates[agent].setdefault(key, []).append(rate(other))
                    print(
                        f"rep={rep} agent={agent} {label} lrtune={rate(other):.0f}/s "
                        f"(return {other['return']:.1f})",
                        flush=True,
                    )
                outside = ours["seconds"] - ours["step_seconds"]
                print(
                    f"rep={rep} agent={agent} lrtune={rate(ours):.0f}/s "
                    f"({ours['env_steps']:.0f} steps, {ours['seconds']:.1f} s, "
                    f"{ours['iterations']:.0f} iterations, {outside:.1f} s outside step(), "
                    f"return {ours['return']:.1f}) sb3={rate(theirs):.0f}/s "
                    f"({theirs['env_steps']:.0f} steps, {theirs['seconds']:.1f} s) "
                    f"load={os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    ratios = {
        agent: statistics.median(r["lrtune"]) / statistics.median(r["sb3"])
        for agent, r in rates.items()
    }
    for agent, r in rates.items():
        print(
            f"{agent}: lrtune median {statistics.median(r['lrtune']):.0f}/s, "
            f"sb3 median {statistics.median(r['sb3']):.0f}/s"
        )
    for agent, key, what, figure in (
        ("dqn", "episode_buffer", "RLlib's EpisodeReplayBuffer", "flat_over_episode"),
        (
            "ppo",
            "default_pipeline",
            "RLlib's default module-to-env pipeline",
            "batched_over_default",
        ),
    ):
        theirs = rates.get(agent, {}).get(key)
        if theirs:
            ours = statistics.median(rates[agent]["lrtune"]) / statistics.median(theirs)
            print(
                f"{agent} on {what}: median {statistics.median(theirs):.0f}/s; {figure}={ours:.2f}"
            )
    print(" ".join(f"{agent}_ratio={ratio:.3f}" for agent, ratio in ratios.items()))


if __name__ == "__main__":
    main()
