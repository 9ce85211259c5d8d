import pytest

from schemas.migrate import Migration, MigrationError, load_migrations, pending


def test_migrations_are_ordered_and_named_by_version() -> None:
    names = [migration.name for migration in load_migrations()]
    assert names == sorted(names)
    assert names[0].startswith("0001_")


def test_pending_skips_applied_and_rejects_edited_ones() -> None:
    first, second = Migration("0001_a.sql", "SELECT 1"), Migration("0002_b.sql", "SELECT 2")
    assert pending([first, second], {}) == [first, second]
    assert pending([first, second], {first.name: first.checksum}) == [second]
    with pytest.raises(MigrationError, match=r"0001_a\.sql changed"):
        pending([first, second], {first.name: "stale"})
