"""Where a run's variants go: their output keys, checked for clashes before anything is
uploaded, and the local file each one is downloaded to.

Two files whose variants map to one output key cannot both be written (the pipeline gives
the key to whichever source claims it first and fails the other with ``output_conflict``).
``photos/cat.jpg`` and ``photos/cat.png`` clash under the default layout, which drops the
extension; ``prism.keys.COLLISION_FREE_OUTPUT_KEY`` keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence

from prism.config import PipelineConfig
from prism.keys import COLLISION_FREE_OUTPUT_KEY
from prism_cli.errors import UserError
from prism_cli.jobs.inputs import InputFile

# Files named in a clash error before "... N more".
SHOWN_FILES = 10


def check_output_keys(
    files: Sequence[InputFile], config: PipelineConfig, upload_prefix: str
) -> None:
    """A UserError naming the files whose outputs would share a key, and the fix."""
    owners: dict[str, list[InputFile]] = {}
    for file in files:
        source_key = file.key(upload_prefix)
        for variant in config.variants:
            key = config.output_key_for(source_key, variant, upload_prefix)
            owners.setdefault(key, []).append(file)
    groups: list[tuple[str, list[str]]] = []  # (an output key, the files sharing it)
    grouped: set[tuple[str, ...]] = set()
    for key, sharing in owners.items():
        displays = tuple(dict.fromkeys(file.display for file in sharing))
        if len(displays) > 1 and displays not in grouped:
            grouped.add(displays)
            groups.append((key, list(displays)))
    if not groups:
        return
    clashing = list(dict.fromkeys(name for _, names in groups for name in names))
    described, shown = [], 0
    for key, names in groups:
        if shown >= SHOWN_FILES:
            break
        described.append(f"{', '.join(names)} -> {key}")
        shown += len(names)
    more = len(clashing) - shown
    fix = "rename the files"
    if config.output_key != COLLISION_FREE_OUTPUT_KEY:
        fix = f'set output_key: "{COLLISION_FREE_OUTPUT_KEY}" in the pipeline config, or ' + fix
    raise UserError(
        f"{len(clashing)} files would write the same output keys: "
        + "; ".join(described)
        + (f"; ... {more} more" if more > 0 else "")
        + f". To keep them apart, {fix}"
    )
