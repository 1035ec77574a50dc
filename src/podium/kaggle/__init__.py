"""Everything that talks to Kaggle or runs as Kaggle would: credentials, client, submit, kernels."""
