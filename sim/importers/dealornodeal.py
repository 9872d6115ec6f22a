"""Deal or No Deal: human-human item negotiations (JSONL, one dialogue per line, YOU/THEM turns)."""

from __future__ import annotations

from typing import Any, Optional

from sim.importers.base import DialogueImporter, importers

META_FIELDS = ("item_counts", "you_values", "them_values", "you_selection", "you_reward", "outcome")


@importers.register("dealornodeal")
class DealOrNoDealImporter(DialogueImporter):
    """Speakers YOU and THEM; values, selection, reward and outcome go to the episode's meta; the closing
    `<selection>` turn (the game's item choice, not something said) is marked as an action."""

    description = "Deal or No Deal negotiations (human-human), JSONL with turns [{speaker, text}]"
    actions = frozenset({"<selection>"})

    def task_of(self, record: dict[str, Any]) -> Optional[str]:
        """Every dialogue divides a pool of items."""
        return "item negotiation"

    def meta_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """The item counts, both sides' values, the selection, reward and outcome."""
        return {name: record.get(name) for name in META_FIELDS}
