"""The migration recipe from prometheus_client runs whole: every block is a python block."""

from __future__ import annotations

from tests.docs.markdown import ROOT, code_blocks

PAGE = ROOT / "docs" / "recipes" / "migrating-from-prometheus-client.md"


def test_every_code_block_of_the_migration_recipe_is_run_by_the_docs_tests() -> None:
    blocks = list(code_blocks(PAGE))
    assert len(blocks) >= 6
    assert [b.where for b in blocks if b.language != "python"] == []
