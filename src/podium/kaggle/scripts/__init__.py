"""The scripts Kaggle runs, as real files: `make kernel` copies one into kernels/<slug>/podium_kernel.py and
fills only its settings block (podium.kaggle.kernels.fill_script); the rest runs as it is written here."""
