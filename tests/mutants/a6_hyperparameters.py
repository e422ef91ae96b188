"""Variants of a6_hyperparameters: realistic wrong edits (each must lose exactly its `loses`) and correct
alternatives (must keep full marks).

Heavy group "workflow" (test_tune, ~4 s on one core): the grader calls the student's tune, which uses every
other function except diagnose, so a variant of any of them re-runs it. Only the mistakes that also ruin the
tuned model, or break the check that best_config is the best validation trial, lose test_tune: most wrong
details (a uniform learning rate, parameters-only averaging of a model without buffers) still tune the model
well, and the unit tests are where they lose their points.

Budget: every variant of a workflow function re-runs test_tune (~4 s on one core), so the pipeline keeps two
mutants per graded part; the other typical mistakes (NumPy's global generator, one trial too few, gradients
never zeroed, the minimum's own rate, an EMA that is the model itself, ...) are unit tests in
tests/graders/test_a6_hyperparameters.py.
"""
from grading import Alternative, Mutant

HEAVY_USES = {"workflow": {"sample_config", "random_search", "lr_range_test", "pick_lr", "ema", "train_with_ema",
                           "tune"},
              "demo": set()}  # the ungraded plots (a histogram, the range test, the visible curves): no test reads them

MUTANTS = [
    # ---- sample_config
    Mutant("sample: learning rate drawn uniformly, not log-uniformly", cell="sample_config",
           find="float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))",
           replace="float(rng.uniform(spec[1], spec[2]))",
           loses=["test_sample_config"]),
    Mutant("sample: int range misses its upper end (off by one)", cell="sample_config",
           find="rng.integers(spec[1], spec[2] + 1)", replace="rng.integers(spec[1], spec[2])",
           loses=["test_sample_config"]),
    # ---- random_search
    Mutant("search: best trial chosen by training loss", cell="random_search",
           find='min(finite, key=lambda trial: trial["val_loss"])',
           replace='min(finite, key=lambda trial: trial["train_loss"])',
           loses=["test_random_search", "test_tune"]),  # tune_run: best_config is not the best validation trial
    Mutant("search: diverged (NaN) trials not skipped", cell="random_search",
           find='finite = [trial for trial in trials if math.isfinite(trial["val_loss"])]', replace="finite = trials",
           loses=["test_random_search"]),
    # ---- lr_range_test
    Mutant("range test: learning rates spaced linearly", cell="lr_range_test",
           find="lr = lr_min * (lr_max / lr_min) ** (k / (steps - 1))",
           replace="lr = lr_min + (lr_max - lr_min) * k / (steps - 1)",
           loses=["test_lr_range_test"]),
    Mutant("range test: never stops on divergence", cell="lr_range_test",
           find="        if not math.isfinite(losses[-1]) or losses[-1] > 4 * min(losses):\n            break\n",
           replace="",
           loses=["test_lr_range_test"]),
    # ---- pick_lr
    Mutant("pick: minimum of the raw, unsmoothed losses", cell="pick_lr",
           find="lrs[int(np.argmin(smoothed))]", replace="lrs[int(np.argmin(losses[:n]))]",
           loses=["test_pick_lr"]),
    Mutant("pick: moving average not debiased", cell="pick_lr",
           find="smoothed.append(avg / (1 - beta ** (k + 1)))", replace="smoothed.append(avg)",
           loses=["test_pick_lr", "test_tune"]),
    # ---- diagnose
    Mutant("diagnose: overfitting looked for in the training curve", cell="diagnose",
           find="if v[-1] - v.min() > 0.1 and", replace="if t[-1] - t.min() > 0.1 and",
           loses=["test_diagnose"]),
    Mutant("diagnose: 'decay too early' from a flat last quarter (underfitting flattens too)", cell="diagnose",
           find="if after < 0.1:", replace="if late < 0.1:",
           loses=["test_diagnose"]),
    # ---- EMA
    Mutant("EMA: decay applied the wrong way round", cell="ema",
           find="averaged.mul_(self.decay).add_(current, alpha=1 - self.decay)",
           replace="averaged.mul_(1 - self.decay).add_(current, alpha=self.decay)",
           loses=["test_ema", "test_train_with_ema"]),
    Mutant("EMA: parameters only, batch-norm buffers never averaged", cell="ema",
           find="zip(self.module.state_dict().values(), model.state_dict().values())",
           replace="zip(self.module.parameters(), model.parameters())",
           loses=["test_ema"]),
    # ---- train_with_ema
    Mutant("train_with_ema: the history measures the raw model", cell="train_with_ema",
           find=", eval_model=lambda: ema.module", replace="",
           loses=["test_train_with_ema"]),
    Mutant("train_with_ema: returns the trained model, not the average", cell="train_with_ema",
           find="return ema.module, history", replace="return model, history",
           loses=["test_train_with_ema"]),
    # ---- tune
    Mutant("tune: final training at the default learning rate", cell="tune",
           find='model, data, steps, config["lr"]', replace='model, data, steps, 1e-3',
           loses=["test_tune"]),
    Mutant("tune: learning rate searched linearly on [1e-5, 1e-3]", cell="tune",
           find='"lr": ("log_uniform", lr / 3, lr * 3)', replace='"lr": ("uniform", 1e-5, 1e-3)',
           loses=["test_tune"]),
]

ALTERNATIVES = [
    Alternative("sample: powers of ten, rng.choice, integers from an arange", cell="sample_config",
                solution=("    config = {}\n"
                          "    for name, (kind, *args) in space.items():\n"
                          "        if kind == 'log_uniform':\n"
                          "            config[name] = float(10 ** rng.uniform(np.log10(args[0]), np.log10(args[1])))\n"
                          "        elif kind == 'uniform':\n"
                          "            config[name] = args[0] + (args[1] - args[0]) * float(rng.random())\n"
                          "        elif kind == 'int':\n"
                          "            config[name] = int(rng.choice(np.arange(args[0], args[1] + 1)))\n"
                          "        elif kind == 'choice':\n"
                          "            config[name] = rng.choice(args[0])\n"
                          "        else:\n"
                          "            raise ValueError(f'unknown kind {kind!r} for {name}')\n"
                          "    return config\n")),
    Alternative("search: keeps the best while it goes, NaN-safe comparison", cell="random_search",
                solution=("    trials, best = [], None\n"
                          "    for _ in range(n_trials):\n"
                          "        config = sample_config(rng, space)\n"
                          "        trial = dict(train_fn(config), config=config)\n"
                          "        trials.append(trial)\n"
                          "        better = best is None or trial['val_loss'] < best['val_loss']\n"
                          "        if np.isfinite(trial['val_loss']) and better:\n"
                          "            best = trial\n"
                          "    return trials, best\n")),
    Alternative("range test: LambdaLR schedule, loss over (N, V, T)", cell="lr_range_test",
                solution=("    model = model_fn()\n"
                          "    model.train()\n"
                          "    optimizer = torch.optim.Adam(model.parameters(), lr=lr_min)\n"
                          "    ratio = (lr_max / lr_min) ** (1 / (steps - 1))\n"
                          "    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: ratio ** k)\n"
                          "    generator = torch.Generator().manual_seed(seed)\n"
                          "    lrs, losses, best = [], [], math.inf\n"
                          "    for k in range(steps):\n"
                          "        x, y = random_windows(data.train_ids, batch_size, seq_len, generator)\n"
                          "        loss = F.cross_entropy(model(x)[0].transpose(1, 2), y)\n"
                          "        lrs.append(optimizer.param_groups[0]['lr'])\n"
                          "        losses.append(float(loss))\n"
                          "        best = min(best, losses[-1])\n"
                          "        if not np.isfinite(losses[-1]) or losses[-1] > 4 * best:\n"
                          "            break\n"
                          "        optimizer.zero_grad()\n"
                          "        loss.backward()\n"
                          "        optimizer.step()\n"
                          "        schedule.step()\n"
                          "    return np.asarray(lrs), np.asarray(losses)\n")),
    Alternative("pick: vectorised weights of the moving average", cell="pick_lr",
                solution=("    losses = np.asarray(losses, dtype=float)\n"
                          "    if not np.isfinite(losses[-1]):\n"
                          "        lrs, losses = lrs[:-1], losses[:-1]\n"
                          "    k = np.arange(len(losses))\n"
                          "    weights = (1 - beta) * np.tril(beta ** np.maximum(k[:, None] - k[None, :], 0))\n"
                          "    smoothed = weights @ losses / (1 - beta ** (k + 1))\n"
                          "    return float(np.asarray(lrs)[np.argmin(smoothed)] / factor)\n")),
    Alternative("diagnose: slopes of a straight-line fit and the share of the total fall", cell="diagnose",
                solution=("    t, v = np.asarray(train_curve, float), np.asarray(val_curve, float)\n"
                          "    K = len(v)\n"
                          "    x = np.arange(K)\n"
                          "    end_slope = np.polyfit(x[-K // 3:], v[-K // 3:], 1)[0]  # per interval, last third\n"
                          "    if v.argmin() < K - 3 and v[-1] > v.min() + 0.1 and v[-1] > t[-1] + 0.5:\n"
                          "        return 'overfitting'\n"
                          "    if (v[0] - v[2]) / (v[0] - v.min()) < 0.3:\n"
                          "        return 'bad_init'\n"
                          "    if v[-1] < 2.1:\n"
                          "        return 'plateau'\n"
                          "    if v[K // 6] - v[-1] < 0.1:\n"
                          "        return 'decay_too_early'\n"
                          "    if v[-1] > 2.7 or end_slope > -0.013:\n"
                          "        return 'underfitting'\n"
                          "    return 'still_improving'\n")),
    Alternative("EMA: parameters and buffers chained, torch.lerp", cell="ema",
                find=("        with torch.no_grad():\n"
                      "            for averaged, current in zip(self.module.state_dict().values(), "
                      "model.state_dict().values()):\n"
                      "                if not averaged.is_floating_point():\n"
                      "                    averaged.copy_(current)\n"
                      "                elif self.n_updates == 0:\n"
                      "                    averaged.copy_(current)\n"
                      "                else:\n"
                      "                    averaged.mul_(self.decay).add_(current, alpha=1 - self.decay)\n"),
                replace=("        import itertools\n"
                         "        mine = itertools.chain(self.module.parameters(), self.module.buffers())\n"
                         "        theirs = itertools.chain(model.parameters(), model.buffers())\n"
                         "        with torch.no_grad():\n"
                         "            for averaged, current in zip(mine, theirs):\n"
                         "                if self.n_updates == 0 or not averaged.is_floating_point():\n"
                         "                    averaged.copy_(current)\n"
                         "                else:\n"
                         "                    averaged.lerp_(current, 1 - self.decay)\n")),
    Alternative("train_with_ema: named callbacks", cell="train_with_ema",
                solution=("    ema = EMA(model, decay)\n"
                          "\n"
                          "    def average(trained, step):\n"
                          "        ema.update(trained)\n"
                          "\n"
                          "    def averaged():\n"
                          "        return ema.module\n"
                          "\n"
                          "    history = train(model, data, steps, lr, weight_decay=weight_decay, seed=seed,\n"
                          "                    eval_every=eval_every, after_step=average, eval_model=averaged)\n"
                          "    return averaged(), history\n")),
    Alternative("tune: no range test, a fixed log-uniform range, H from a choice, EMA decay 0.9", cell="tune",
                solution=("    space = {'lr': ('log_uniform', 3e-3, 5e-2), 'hidden_size': ('choice', [40, 48]),\n"
                          "             'weight_decay': ('log_uniform', 1e-6, 1e-4)}\n"
                          "    trials, best = random_search(lambda c: train_trial(c, data, 50), space, 3, rng)\n"
                          "    torch.manual_seed(1)\n"
                          "    config = best['config']\n"
                          "    model = build_model(config, data.vocab.size)\n"
                          "    steps = grader.WORKFLOW['final_steps']\n"
                          "    averaged, _ = train_with_ema(model, data, steps, config['lr'], 0.9,\n"
                          "                                 weight_decay=config['weight_decay'])\n"
                          "    return averaged, best['config'], trials\n")),
]
