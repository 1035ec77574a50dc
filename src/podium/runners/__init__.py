"""The runners: what turns a config and its task object into a run (train, predict, lr_find, pseudo-labels).

They sit above tasks/ (they are handed the task object) and below the products that combine runs (blend,
search, kaggle) and the CLI. training/ holds the pieces they and the tasks use.
"""
