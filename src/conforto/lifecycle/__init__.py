"""The registry, the promotion gate, the pipeline's stages and releases.

May import: monitor, tracking, training and the layers below them.
"""
