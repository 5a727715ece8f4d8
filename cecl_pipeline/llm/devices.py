"""What JAX sees: platform, devices and their memory, for `cecl gpu-status` (works without a GPU too)."""

from __future__ import annotations


def device_report() -> list[dict]:
    """One entry per JAX device: id, platform, kind, and memory in use / limit in bytes where the backend reports it."""
    import jax

    rows = []
    for device in jax.devices():
        stats = device.memory_stats() or {}
        rows.append({"id": device.id, "platform": device.platform, "kind": device.device_kind,
                     "bytes_in_use": stats.get("bytes_in_use"), "bytes_limit": stats.get("bytes_limit"),
                     "peak_bytes_in_use": stats.get("peak_bytes_in_use")})
    return rows


def format_report(rows: list[dict]) -> str:
    import jax

    lines = [f"jax {jax.__version__}, backend {jax.default_backend()}, {len(rows)} device(s)"]
    for row in rows:
        memory = "no memory statistics (CPU)" if row["bytes_limit"] is None else (
            f"{row['bytes_in_use'] / 2**30:.2f} GiB in use of {row['bytes_limit'] / 2**30:.2f} GiB "
            f"(peak {(row['peak_bytes_in_use'] or 0) / 2**30:.2f} GiB)")
        lines.append(f"  {row['platform']}:{row['id']}  {row['kind']}  {memory}")
    if all(row["platform"] == "cpu" for row in rows):
        lines.append("no GPU visible to JAX: training and sampling run on the CPU")
    return "\n".join(lines)
