"""The pure core: what a story is, what its targets are called, what they send and cost, and whether they are current.

Nothing here imports doit, a provider SDK or a story store; everything is deterministic for the same inputs.
"""
