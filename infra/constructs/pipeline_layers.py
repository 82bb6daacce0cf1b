"""Lambda layers: one dependency layer per bundle and the mlops code layer, built at synth time."""

from __future__ import annotations

import sys

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_
from layers.build import Layer, build_code, build_dependencies, placeholder

from constructs import Construct


class PipelineLayers(Construct):
    """Builds (or reuses cached) layers without Docker and exposes them per bundle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bundles: set[str],
        arch: str,
        runtime: lambda_.Runtime,
        python: str,
        skip_build: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        architecture = lambda_.Architecture.ARM_64 if arch == "arm64" else lambda_.Architecture.X86_64
        self.code: Layer = placeholder("code") if skip_build else build_code(python)
        self.built: dict[str, Layer] = {}
        for bundle in sorted(bundles):
            if skip_build:
                self.built[bundle] = placeholder(bundle)
            else:
                self.built[bundle] = build_dependencies(bundle, arch, python)
        self._versions: dict[str, lambda_.LayerVersion] = {}
        for name, layer in {**self.built, "code": self.code}.items():
            self._versions[name] = lambda_.LayerVersion(
                self,
                f"{name.title()}Layer",
                # The build directory's name already carries a hash of its inputs: no need to fingerprint
                # hundreds of megabytes again on every synth.
                code=lambda_.Code.from_asset(
                    str(layer.path), asset_hash=layer.path.name, asset_hash_type=AssetHashType.CUSTOM
                ),
                compatible_runtimes=[runtime],
                compatible_architectures=[architecture],
                description=f"serverless-mlops {name} ({layer.size / 1e6:.1f} MB unzipped)",
            )
        if not skip_build:
            for name, layer in sorted(self.built.items()):
                print(
                    f"[layers] {name:<8} {layer.size / 1e6:7.1f} MB  (+ mlops {self.code.size / 1e6:.1f} MB)"
                    f"  byte-compiled={layer.compiled}",
                    file=sys.stderr,
                )

    def for_bundle(self, bundle: str) -> list[lambda_.ILayerVersion]:
        return [self._versions[bundle], self._versions["code"]]

    def built_for(self, bundle: str) -> list[Layer]:
        return [self.built[bundle], self.code]
