"""The registry, the promotion gate, the pipeline's stages and releases.

May import: everything but serving, deploy and the CLI.
"""
