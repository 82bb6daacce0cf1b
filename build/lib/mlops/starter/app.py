"""This project's CDK app: the serverless-mlops platform, deployed with this project's models and components."""

from pathlib import Path

from mlops.infra import MlopsApp

MlopsApp(project_dir=Path(__file__).parent).synth()
