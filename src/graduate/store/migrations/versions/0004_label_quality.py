"""label quality: rationales beside labels, example groups, a log of label changes, teacher audits

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("labels", sa.Column("rationale", sa.JSON(), nullable=True))
    op.add_column("examples", sa.Column("group", sa.String(length=300), nullable=True))
    op.create_table(
        "label_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("example_id", sa.Integer(), nullable=False),
        sa.Column("labeller", sa.String(length=300), nullable=False),
        sa.Column("old_label", sa.String(length=200), nullable=True),
        sa.Column("new_label", sa.String(length=200), nullable=True),
        sa.Column("old_note", sa.Text(), nullable=True),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["example_id"], ["examples.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "teacher_audits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audit_id", sa.String(length=32), nullable=False),
        sa.Column("config", sa.String(length=200), nullable=False),
        sa.Column("labeller", sa.String(length=300), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("recommended", sa.Boolean(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("audit_id", "config", name="uq_teacher_audits_audit_config"),
    )


def downgrade() -> None:
    op.drop_table("teacher_audits")
    op.drop_table("label_changes")
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("group")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("rationale")
