"""The classifier benchmark: does adding synthetic images help the rare classes?

One shared classifier is trained under several training-set *arms* (real, reweight,
oversample, classic augmentation, real + each synthetic set at some ratio), over the same
seeds, selected on the validation patients and evaluated once on the test patients. The
report gives per-class metrics as mean and 95% CI over seeds and each arm's paired
difference from the reference arm (``real``).

Modules: config (options), arms (training sets), classifier (models), augment (classic
augmentation), training (the Accelerate loop), metrics, statistics, provenance (leakage
checks of synthetic sets), reduced (a controlled-imbalance training set as a dataset),
runner (plans, runs, resumes), aggregate (numbers from stored runs), report and plots
(outputs). Only classifier, augment and training import torch.
"""
