"""Platform-wide KMS keys that more than one domain uses (today: the CloudWatch Logs key)."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.security.documents import logs_key_policy

if TYPE_CHECKING:
    from mlplatform.infra.security.keys import PlatformKeys, PlatformKeysArgs

__all__ = ["PlatformKeys", "PlatformKeysArgs", "logs_key_policy"]


def __getattr__(name: str) -> Any:
    if name in ("PlatformKeys", "PlatformKeysArgs"):
        from mlplatform.infra.security import keys

        return getattr(keys, name)
    raise AttributeError(name)
