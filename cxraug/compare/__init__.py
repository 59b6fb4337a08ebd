"""``cxraug compare``: several generator runs scored on the same real images, n, noise seed
and feature network in one process, with bootstrap intervals, paired differences and cost.

Modules: ``core`` (config, the comparison), ``bootstrap`` (intervals from resampled
features), ``cost`` (training clock read, sampling measured), ``downstream`` (benchmark
deltas matched through synth provenance), ``report`` (json/csv/md/png), ``html`` (the page).
Importing this package does not import torch.
"""
