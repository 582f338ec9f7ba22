"""Which inference images a version may run: allowed registries, pinned by digest.

The manifest names the image SageMaker runs with the stack's execution role, so an image from any
registry, or a tag that can be moved after approval, would let whoever controls it decide what serves.
Checked at registration (the manifest) and again at promotion (the settings may have changed since).
"""

from __future__ import annotations

import re

from msgspec import Struct

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# The AWS Deep Learning Containers registry account of each region where it is not 763104351884
# (aws/deep-learning-containers, available_images.md). SageMaker's built-in algorithm images
# (XGBoost, scikit-learn, ...) live in other accounts: add those registries with AllowedImageRegistries.
DLC_ACCOUNT = "763104351884"
DLC_ACCOUNT_BY_REGION = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}


class ImagePolicy(Struct, frozen=True):
    """The stack's rule for inference images."""

    allowed_registries: tuple[str, ...]  # registry hosts, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    require_digest: bool


def default_registries(account_id: str, region: str) -> tuple[str, ...]:
    """This account's ECR in the region and the region's Deep Learning Containers registry."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    dlc = DLC_ACCOUNT_BY_REGION.get(region, DLC_ACCOUNT)
    return (f"{account_id}.dkr.ecr.{region}.{suffix}", f"{dlc}.dkr.ecr.{region}.{suffix}")


def registry_of(image: str) -> str:
    """The registry host of an image URI: what comes before the first '/' (none: Docker Hub)."""
    first, slash, _ = image.partition("/")
    return first.lower() if slash and ("." in first or ":" in first) else "docker.io"


def digest_of(image: str) -> str | None:
    """`sha256:<hex>` when the image is pinned by digest."""
    return image.rsplit("@", 1)[1] if DIGEST.search(image) else None


def image_refusal(image: str, policy: ImagePolicy) -> str | None:
    """Why `image` may not run, or None if it may."""
    registry = registry_of(image)
    if registry not in {allowed.lower() for allowed in policy.allowed_registries}:
        return (
            f"inference image {image!r} is from registry {registry}, which is not allowed "
            f"(AllowedImageRegistries: {', '.join(policy.allowed_registries)})"
        )
    if policy.require_digest and digest_of(image) is None:
        return (
            f"inference image {image!r} is not pinned by digest: name it as <repository>@sha256:<digest> "
            "(a tag can be moved after approval; RequireImageDigest)"
        )
    return None
