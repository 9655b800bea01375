"""Small JSON documents in the transfer bucket (manifests, result bundles), verified like any object."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from fleet.transport.objects import ObjectCorrupt, ObjectStore, StoredObject

Document = TypeVar("Document", bound=BaseModel)


def put_document(store: ObjectStore, key: str, document: BaseModel, scratch: Path) -> StoredObject:
    """Upload `document` as JSON under `key` (through a temp file in `scratch`, the store's unit)."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=scratch, suffix=".json", delete=False) as out:
        out.write(document.model_dump_json())
    path = Path(out.name)
    try:
        return store.put_file(key, path)
    finally:
        path.unlink(missing_ok=True)


def get_document(store: ObjectStore, key: str, kind: type[Document], scratch: Path) -> Document:
    """Download and parse `key` (ObjectMissing, ObjectCorrupt: the checksum or the JSON is wrong)."""
    path = Path(tempfile.mkstemp(dir=scratch, suffix=".json")[1])
    try:
        store.get_file(key, path)
        try:
            return kind.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise ObjectCorrupt(f"{key} is not a {kind.__name__}: {exc.errors()[0]['msg']}") from exc
    finally:
        path.unlink(missing_ok=True)
