"""Measurement harnesses that are not applications: `speed` times rnnkit against torch.nn.

Sits above tasks, beside cli (DESIGN.md): imports anything below it; imported by cli and
benchmarks/.
"""
