"""The classifier core: models, fit / select / predict, AUROC and thresholds, real-only
training sets and their config. Used by the benchmark (which adds arms with synthetic images,
seeds, reports) and by the reference classifier of ``cxraug score``; imports neither."""
