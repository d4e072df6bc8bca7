"""the process running a DP query or an egress check, for crash recovery

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('releases') as batch:
        batch.add_column(sa.Column('worker', sa.String(length=128), nullable=True))
    with op.batch_alter_table('egress_requests') as batch:
        batch.add_column(sa.Column('worker', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('egress_requests') as batch:
        batch.drop_column('worker')
    with op.batch_alter_table('releases') as batch:
        batch.drop_column('worker')
