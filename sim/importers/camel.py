"""CAMEL AI-Society role-play chats: one JSON file per chat, a folder of them, or their zip."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

from sim.importers.base import ImportProblem, Importer, Source, field_of, imported_episode, importers, read_json
from sim.records import Episode

MESSAGE_KEY = re.compile(r"^message_(\d+)$")


@importers.register("camel")
class CamelImporter(Importer):
    """Turns take CAMEL's `role_type` (USER/ASSISTANT) as role, so `role_flip` scores them like generated role-play."""

    description = "CAMEL AI-Society chats: chat JSON files (role_1, role_2, message_N, ...), a folder of them, or a .zip"
    reads_folders = True

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per chat file, in name order."""
        for name, chat in self._chats(source.path):
            yield self._episode(source, name, chat)

    def _chats(self, path: Path) -> Iterator[tuple[str, Any]]:
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                yield file.relative_to(path).as_posix(), read_json(file)
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in sorted(n for n in archive.namelist() if n.endswith(".json")):
                    try:
                        yield name, json.loads(archive.read(name).decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                        raise ImportProblem(path, None, f"{name}: not a UTF-8 JSON chat ({exc})") from None
        else:
            yield path.name, read_json(path)

    def _episode(self, source: Source, name: str, chat: Any) -> Episode:
        where = source.path if source.path.is_file() and not zipfile.is_zipfile(source.path) else source.path / name
        numbered = sorted(
            (int(match.group(1)), value) for key, value in (chat.items() if isinstance(chat, dict) else []) if (match := MESSAGE_KEY.match(key))
        )
        if not numbered:
            raise ImportProblem(where, None, "no message_N entries: not a CAMEL chat file")
        turns = []
        for _, message in numbered:
            role_type = str(field_of(message, "role_type", where, 1)).lower()
            turns.append((str(message.get("role_name") or role_type), role_type, str(field_of(message, "content", where, 1))))
        task = chat.get("specified_task") or chat.get("original_task")
        meta = {key: chat.get(key) for key in ("role_1", "role_2", "original_task", "specified_task", "num_messages")}
        key = Path(name).with_suffix("").as_posix().replace("/", "_")
        reason = chat.get("termination_reason") or "imported"
        return imported_episode(source, key, "conversation", turns, task, meta, termination_reason=reason)
