"""Reading pack and directory files, with errors a city administrator can act on."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from incidents.policy.directory import Directory
from incidents.policy.schema import Citation, Pack
from incidents.policy.sources import documents

M = TypeVar("M", bound=BaseModel)

PACKS_DIR = Path(__file__).parent / "packs"
DEMO_DIRECTORY = Path(__file__).parent / "demo-directory.yaml"


class PolicyError(Exception):
    """A pack or directory file cannot be used. The message names the file and what to fix."""


def available_packs() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def pack_path(name: str) -> Path:
    """A pack by name (`san-jose`) from the packs shipped here, or by path to a file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return PACKS_DIR / f"{name}.yaml"


def load_pack(path: Path) -> Pack:
    return with_citations_placed(_validated(Pack, path))


def with_citations_placed(pack: Pack) -> Pack:
    """The pack with each citation's document title and the link to its passage filled in."""

    def placed(citation: Citation, anchor: str) -> Citation:
        known = documents().get(citation.file)
        if known is not None:
            title = known.title
        elif citation.file == pack.source:
            title = pack.source_title
        else:
            title = citation.file
        return citation.model_copy(
            update={"document": title, "link": f"/policies/{pack.id}/source#{anchor}"}
        )

    rules = [r.model_copy(update={"citation": placed(r.citation, r.id)}) for r in pack.rules]
    triage = pack.triage
    if triage is not None:
        triage = triage.model_copy(update={"citation": placed(triage.citation, "triage")})
    return pack.model_copy(update={"rules": rules, "triage": triage})


def load_packs(names: Iterable[str]) -> list[Pack]:
    """Load and check the packs named, in order; a department pack needs the pack it layers on."""
    packs: list[Pack] = []
    for name in names:
        path = pack_path(name.strip())
        if not path.exists():
            known = ", ".join(available_packs())
            raise PolicyError(f"{path}: no such policy pack {name!r}; the packs here are: {known}")
        packs.append(load_pack(path))
    if not packs:
        raise PolicyError("no policy pack is active; set INCIDENTS_POLICY, e.g. san-jose")
    ids = [p.id for p in packs]
    for pack in packs:
        if pack.layers_on and pack.layers_on not in ids:
            raise PolicyError(
                f"{pack_path(pack.id)}: pack {pack.id!r} layers on {pack.layers_on!r}, which is "
                f"not active; set INCIDENTS_POLICY={pack.layers_on},{pack.id}"
            )
    return packs


def load_directory(path: Path) -> Directory:
    return _validated(Directory, path)


def _validated(model: type[M], path: Path) -> M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of keys to values at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_where(raw, e['loc'])}: {_what(e)}" for e in exc.errors())
        raise PolicyError(f"{path}: {exc.error_count()} problem(s):\n{problems}") from None


def _what(error: ErrorDetails) -> str:
    """Pydantic's message, reworded where a city administrator needs to know what to write."""
    kind, loc, given = error["type"], error["loc"], error.get("input")
    field = str(loc[-1]) if loc else ""
    if kind == "enum":
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{given!r} is not a word this service knows here; use one of {allowed}"
    if kind.startswith("time_delta"):
        return (
            f"{given!r} is not a duration; write an ISO 8601 duration such as PT24H (24 hours), "
            "PT30M (30 minutes) or P2D (2 days)"
        )
    if kind == "missing" and field == "citation":
        return (
            "every rule must cite the policy it encodes: add 'citation' with 'file' (the seed "
            "policy file), 'section' and 'quote' (the sentence, word for word)"
        )
    if kind == "missing":
        return f"'{field}' is required"
    if kind == "extra_forbidden":
        return f"'{field}' is not a setting a pack can have here (misspelt?)"
    return str(error["msg"])


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """A readable location such as `rules[2] (harm-24h).within`."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and "id" in node:
                    label += f" ({node['id']})"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"
