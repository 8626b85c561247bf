"""What leaves LossLens: a run as a zip or a TensorFlow Embedding Projector bundle (export), figures in a
paper's style as SVG, PDF and 300-dpi PNG (paper), tables as CSV and LaTeX (tables), feature spaces above
Grad-CAM maps as one figure (composed), and an experiment's self-contained HTML report (html)."""
