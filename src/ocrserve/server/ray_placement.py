"""Why a model's Ray replicas wait: Ray's pending resource demands against what a replica needs.

Serve creates a replica's actor at once; Ray places it when a node has the resources it reserves
free (``ray_replica_cpus``, a GPU for ``deviceType: gpu``). Until then the actor is
``PENDING_CREATION`` and its resources are among the demands Ray's autoscaler keeps (what
``ray status`` shows as "Pending"), beside the cluster's total and free resources: a
`ClusterRoom`. The engine reads it only while a replica is unplaced, and says which model waits
for what (`ocrserve.server.ray_engine.RayModel`).

Imported only by `ocrserve.server.ray_engine`, itself imported only with ``engine=ray``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClusterRoom", "cluster_room", "format_resources"]


def format_resources(resources: Mapping[str, float]) -> str:
    """``{"CPU": 1.0, "GPU": 0.5}`` -> ``CPU 1, GPU 0.5``."""
    return ", ".join(f"{name} {amount:g}" for name, amount in resources.items()) or "nothing"


@dataclass(frozen=True)
class ClusterRoom:
    """The resource bundles Ray cannot place now (tasks' and actors'), and the cluster's total
    and free resources."""

    demands: tuple[dict[str, float], ...] = ()
    total: dict[str, float] = field(default_factory=dict)
    free: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> ClusterRoom:
        """From `cluster_room`'s plain values."""
        return cls(
            tuple(dict(bundle) for bundle in plain.get("demands", ())),
            dict(plain.get("total", {})),
            dict(plain.get("free", {})),
        )

    def demand_for(self, needs: Mapping[str, float]) -> dict[str, float] | None:
        """A pending bundle asking what a replica reserves (``needs``), or None."""
        for bundle in self.demands:
            if all(abs(bundle.get(name, 0.0) - amount) < 1e-6 for name, amount in needs.items()):
                return bundle
        return None

    def why(self, replicas: int, bundle: Mapping[str, float]) -> str:
        """``1 replica waits for a Ray node with CPU 1 free (the cluster has CPU 0 of 2
        free): ...``, the resources as Ray's demand names them."""
        has = ", ".join(
            f"{name} {self.free.get(name, 0.0):g} of {self.total.get(name, 0.0):g}"
            for name in bundle
        )
        waits = "1 replica waits" if replicas == 1 else f"{replicas} replicas wait"
        return (
            f"{waits} for a Ray node with {format_resources(bundle)} free (the cluster has "
            f"{has} free): add a node, or lower ray_replica_cpus or the models' minWorkers"
        )


def cluster_room() -> dict[str, Any]:
    """Ray's pending demands and the cluster's resources, as plain values (run in the server, or
    as a task in the cluster for a Ray Client server)."""
    import ray
    from ray.autoscaler.v2.sdk import get_cluster_status

    status = get_cluster_status(ray.get_runtime_context().gcs_address)
    demands = [
        {name: float(amount) for name, amount in by_count.bundle.items()}
        for demand in status.resource_demands.ray_task_actor_demand
        for by_count in demand.bundles_by_count
    ]
    return {
        "demands": demands,
        "total": status.total_resources(),
        "free": status.available_resources(),
    }
