"""The classifier benchmark: does adding synthetic images help the rare classes?

One shared classifier is trained under several training-set *arms* (real, reweight,
oversample, classic augmentation, real + each synthetic set at some ratio), over the same
seeds, selected on the validation patients and evaluated once on the test patients. The
report gives per-class metrics as the mean over seeds with a paired bootstrap interval over
test patients and seeds, each arm's paired difference from the reference arm (``real``), and
verdicts adjusted for the number of comparisons.

Modules: config (options), arms (training sets), classifier (models), augment (classic
augmentation), training (the Accelerate loop), metrics, bootstrap (metrics under resampled
test patients and seeds), statistics (intervals, adjustment, verdicts), provenance (leakage
checks of synthetic sets), reduced (a controlled-imbalance training set as a dataset),
runner (plans, runs, resumes), aggregate (numbers from stored runs), report and plots
(outputs). Only classifier, augment and training import torch.
"""
