"""claims: one foreign key to the task, its group and its brief, in place of one to each

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-05 15:40:00

A claim's group_id and brief_id are its task's, copied so the hot reads need no join. Three foreign
keys checked that each existed, but not that they were the task's; and the checks on the group and
the brief took a KEY SHARE lock on those two rows for every claim: in a drop, every claim of the
group locked the same two rows, each lock a tuple header rewritten and a WAL record, and two at
once a MultiXact. One composite key (task_id, group_id, brief_id) → tasks (id, group_id, brief_id)
says more (the copies are the task's) and locks only the task's row, which the claim holds FOR
UPDATE already. It needs a unique key on those three columns of tasks (id alone is unique, so
every existing row has it) and every claim already satisfies it: claims are inserted from their task.
"""
from alembic import op

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks') as batch:
        batch.create_unique_constraint('uq_tasks_id_group_id_brief_id', ['id', 'group_id', 'brief_id'])
    with op.batch_alter_table('claims') as batch:
        batch.drop_constraint('fk_claims_brief_id_briefs', type_='foreignkey')
        batch.drop_constraint('fk_claims_group_id_task_groups', type_='foreignkey')
        batch.drop_constraint('fk_claims_task_id_tasks', type_='foreignkey')
        batch.create_foreign_key('fk_claims_task_id_tasks', 'tasks', ['task_id', 'group_id', 'brief_id'],
                                 ['id', 'group_id', 'brief_id'])


def downgrade():
    with op.batch_alter_table('claims') as batch:
        batch.drop_constraint('fk_claims_task_id_tasks', type_='foreignkey')
        batch.create_foreign_key('fk_claims_task_id_tasks', 'tasks', ['task_id'], ['id'])
        batch.create_foreign_key('fk_claims_group_id_task_groups', 'task_groups', ['group_id'], ['id'])
        batch.create_foreign_key('fk_claims_brief_id_briefs', 'briefs', ['brief_id'], ['id'])
    with op.batch_alter_table('tasks') as batch:
        batch.drop_constraint('uq_tasks_id_group_id_brief_id', type_='unique')
