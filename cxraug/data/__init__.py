"""Data: sources (NIH, MedMNIST, folder, phantom), patient splits, prepare, the prepared format."""
