"""The license ids the Hub accepts in model and dataset card metadata: one list, read by the
spec models (so `runner validate` refuses what the Hub would) and by the emulator's
`/api/validate-yaml` (so it refuses what the Hub refuses)."""

from __future__ import annotations

import difflib

# huggingface.co/docs/hub/repositories-licenses; a license not listed there is `other`, named
# by `license_name` and `license_link`.
_LICENSE_IDS = """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m
    bigscience-bloom-rail-1.0 bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause
    bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0
    cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
    cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0
    etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc
    h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
    openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
    llama3.3 llama4 gemma unknown other
"""
HUB_LICENSES = frozenset(_LICENSE_IDS.split())
OTHER_LICENSE = "other"
"""The id for a license not on the list; the card then names it with `license_name` and
`license_link`."""
LICENSES_PAGE = "https://huggingface.co/docs/hub/repositories-licenses"

# SPDX spells the GNU licenses `GPL-3.0-only` / `GPL-3.0-or-later`; the Hub has one id for both.
_SPDX_SUFFIXES = ("-only", "-or-later", "+")


def nearest_license(value: str) -> str | None:
    """The Hub's id that `value` most likely means: the same id in other capitals or in SPDX's
    spelling (`Apache-2.0`, `GPL-3.0-only`), the one id it leaves the version off (`cc0`),
    else a near spelling (`apache2.0`); None when nothing is close enough to suggest."""
    lowered = value.strip().lower()
    for suffix in _SPDX_SUFFIXES:
        if lowered.removesuffix(suffix) in HUB_LICENSES:
            return lowered.removesuffix(suffix)
    versioned = [known for known in HUB_LICENSES if _versions(known, lowered)]
    if len(versioned) == 1:
        return versioned[0]
    close = difflib.get_close_matches(lowered, sorted(HUB_LICENSES), n=1, cutoff=0.8)
    return close[0] if close else None


def _versions(known: str, stem: str) -> bool:
    """Whether `known` is `stem` with a version added (`cc0-1.0` for `cc0`)."""
    rest = known.removeprefix(stem)
    return bool(stem) and rest != known and rest[:1] in ("-", ".") and rest[1:2].isdigit()
