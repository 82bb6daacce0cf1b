"""Lambda layers: one dependency layer per bundle and the mlops code layer, built at synth time.

Each stack that has functions owns its own layer versions (the same cached build, so the same asset):
a layer version is replaced whenever its content changes, and CloudFormation refuses to change an export
another stack imports — so layer ARNs never cross a stack boundary (aws/aws-cdk#1972).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_

from constructs import Construct
from mlops.layers.build import Layer, build_code, build_dependencies, placeholder


@functools.cache
def _dependencies(bundle: str, arch: str, python: str, skip_build: bool) -> Layer:
    if skip_build:
        return placeholder(bundle)
    layer = build_dependencies(bundle, arch, python)
    print(f"[layers] {bundle:<8} {layer.size / 1e6:7.1f} MB  {layer.layout}", file=sys.stderr)
    return layer


class PipelineLayers(Construct):
    """Builds (or reuses cached) layers without Docker and exposes them per bundle, created on first use.

    ``skip_build`` (tests, the emulator) replaces the dependency layers with placeholders; the code layer
    is always the real ``mlops`` package (small, and what changes from one deploy to the next).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        arch: str,
        runtime: lambda_.Runtime,
        python: str,
        skip_build: bool,
        components: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._arch, self._runtime, self._python, self._skip = arch, runtime, python, skip_build
        self._architecture = lambda_.Architecture.ARM_64 if arch == "arm64" else lambda_.Architecture.X86_64
        self.code: Layer = build_code(python, components)
        self.built: dict[str, Layer] = {}
        self._versions: dict[str, lambda_.LayerVersion] = {}

    def _version(self, name: str, layer: Layer) -> lambda_.LayerVersion:
        if name not in self._versions:
            self._versions[name] = lambda_.LayerVersion(
                self,
                f"{name.title()}Layer",
                # The build directory's name already carries a hash of its inputs: no need to fingerprint
                # hundreds of megabytes again on every synth.
                code=lambda_.Code.from_asset(
                    str(layer.path), asset_hash=layer.path.name, asset_hash_type=AssetHashType.CUSTOM
                ),
                compatible_runtimes=[self._runtime],
                compatible_architectures=[self._architecture],
                description=f"serverless-mlops {name} ({layer.size / 1e6:.1f} MB unzipped)",
            )
        return self._versions[name]

    def built_for(self, bundle: str) -> list[Layer]:
        if bundle not in self.built:
            self.built[bundle] = _dependencies(bundle, self._arch, self._python, self._skip)
        return [self.built[bundle], self.code]

    def for_bundle(self, bundle: str) -> list[lambda_.ILayerVersion]:
        deps, code = self.built_for(bundle)
        return [self._version(bundle, deps), self._version("code", code)]
