"""Applications: one file per task, data -> model -> metrics -> report.

Imports anything below it in the chain (config .. training, data, diagnostics); imported by cli.
"""
