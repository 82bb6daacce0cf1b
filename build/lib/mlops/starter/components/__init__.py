"""This project's own ML code: feature components (features.py) and model components, named by import path in the
models' YAML files (``components.features:Ratio``). See ``mlops.components`` for the contract."""
