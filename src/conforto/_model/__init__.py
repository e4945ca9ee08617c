"""What a trained model is and how it answers: its inputs, its artifact, batch and MLflow scoring.

May import: adaptation, uncertainty, scoring, physics, data and the top-level modules.
"""
