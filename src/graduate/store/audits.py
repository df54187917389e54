"""Teacher audits in the store: one row per configuration (or ensemble) per audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from graduate.store.db import now
from graduate.store.schema import teacher_audits


def save_audit(engine: Engine, audit: dict[str, Any]) -> None:
    """Store every configuration of an audit (``graduate.experiments.audit.run_audit``'s result)."""
    created = now()
    recommended = (audit.get("recommended") or {}).get("name")
    with engine.begin() as conn:
        conn.execute(
            teacher_audits.insert(),
            [
                {
                    "audit_id": audit["audit_id"],
                    "config": c["name"],
                    "labeller": c.get("labeller"),
                    "spec": c["spec"],
                    "metrics": {k: v for k, v in c.items() if k not in ("name", "labeller", "spec")},
                    "recommended": c["name"] == recommended,
                    "live": bool(audit.get("live")),
                    "created_at": created,
                }
                for c in audit["configs"]
            ],
        )


def latest_audit_rows(engine: Engine) -> list[dict[str, Any]]:
    """The rows of the newest audit (empty when none was run)."""
    with engine.connect() as conn:
        last = conn.execute(select(teacher_audits.c.audit_id).order_by(teacher_audits.c.id.desc()).limit(1)).scalar()
        if last is None:
            return []
        rows = conn.execute(select(teacher_audits).where(teacher_audits.c.audit_id == last).order_by(teacher_audits.c.id)).mappings().all()
    return [dict(r) for r in rows]


def latest_audit(engine: Engine) -> dict[str, dict[str, Any]]:
    """The newest audit's configurations by name (empty when no audit was run)."""
    return {r["config"]: {**r["metrics"], "name": r["config"], "labeller": r["labeller"], "spec": r["spec"]} for r in latest_audit_rows(engine)}
