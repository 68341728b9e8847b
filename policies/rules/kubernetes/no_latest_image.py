"""Images are pinned: a tag other than `latest`, or a digest."""

from collections.abc import Iterator

from policies.helpers import WORKLOAD_TYPES, containers, pod_specs
from policies.model import Resource, RuleContext, is_unknown, resource_rule


def unpinned(image: str) -> bool:
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest")


@resource_rule(
    id="kubernetes-workload-no-latest-image",
    severity="high",
    types=list(WORKLOAD_TYPES),
    description="Container images name a fixed tag or digest, never `latest` or no tag (mandatory in prod).",
    remediation="Pin the image to a released version tag or a sha256 digest.",
    references=["checkov CKV_K8S_14", "checkov CKV_K8S_43"],
)
def check(r: Resource, ctx: RuleContext) -> Iterator[str]:
    for where, pod in pod_specs(r):
        for name, container in containers(pod):
            image = container.get("image")
            if isinstance(image, str) and not is_unknown(image) and unpinned(image):
                yield f"{where}.{name} uses an unpinned image {image}"


RULE = check
