from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState


class RemoveIndexExceptOnPostgreSQL(migrations.RemoveIndex):
    """Removes the index from the model, and from the database except on PostgreSQL, where
    it stays, outside the model's state."""

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    """The partial ``touched`` index of each kind (0004) only where a query uses it:
    PostgreSQL counts and expires by them. SQLite counts, pages and expires by
    ``(kind, touched, id)``, which covers those queries where a partial index on ``touched``
    does not; MySQL and MariaDB ignore an index's condition and had built three whole
    ``touched`` indexes. Elsewhere they only cost every flushed row three more index writes
    (one on SQLite), and SQLite reads them with the schema on each new connection."""

    dependencies = [
        ("active_users", "0007_key_constraint"),
    ]

    operations = [
        RemoveIndexExceptOnPostgreSQL(model_name="activeentry", name=name)
        for name in [
            "active_users_entry_idx",
            "active_users_visitor_idx",
            "active_users_distinct_idx",
        ]
    ]
