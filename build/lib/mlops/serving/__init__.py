"""The serving runtime: onnxruntime and numpy only (no pandas, no scikit-learn), shared by the
serving Lambda and the pipeline's infra validation so both run the same code."""
