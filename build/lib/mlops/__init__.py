"""serverless-mlops: continuous training and serving of tabular models on AWS serverless."""

__version__ = "0.1.0"
