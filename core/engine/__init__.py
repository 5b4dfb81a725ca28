"""Training: the runner, the task trainers (chat, classifiers), callbacks, run folders and reports."""
