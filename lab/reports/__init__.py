"""What leaves LossLens: a run as a zip or as a TensorFlow Embedding Projector bundle (export)."""
