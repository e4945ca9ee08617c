"""The promotion gate, the pipeline's stages, the shadow period before a promotion, releases.

May import: registry, monitor, tracking, training and the layers below them.
"""
