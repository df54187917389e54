"""lease owner index: a run's calls and budget slices (lease owners RUN-share-attempt) are found by
a range on an indexed owner, compared byte by byte (PostgreSQL: collation "C", so the range is the
exact prefix whatever the database's locale); a failed call keeps whether its error was transient,
so a dead Ray worker's refusals are not reported as retryable

Revision ID: 0015
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _owner_collation(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("teacher_calls", "lease_owner", type_=sa.String(length=64, collation=collation), existing_nullable=True)
    op.alter_column("budget_slices", "owner", type_=sa.String(length=64, collation=collation), existing_nullable=False)


def upgrade() -> None:
    _owner_collation("C")
    op.create_index("ix_teacher_calls_lease_owner", "teacher_calls", ["lease_owner"])
    op.create_index("ix_budget_slices_owner", "budget_slices", ["owner"])
    op.add_column("teacher_calls", sa.Column("transient", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teacher_calls") as batch:
        batch.drop_column("transient")
    op.drop_index("ix_budget_slices_owner", table_name="budget_slices")
    op.drop_index("ix_teacher_calls_lease_owner", table_name="teacher_calls")
    _owner_collation("default")
