"""Every table of every domain, imported once so metadata and migrations see them all."""

from outpost.audit import models as audit_models
from outpost.connectivity import models as connectivity_models
from outpost.db import Base
from outpost.files import models as file_models
from outpost.identity import models as identity_models
from outpost.inventory import models as inventory_models

metadata = Base.metadata

__all__ = [
    "audit_models",
    "connectivity_models",
    "file_models",
    "identity_models",
    "inventory_models",
    "metadata",
]
