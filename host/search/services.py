"""Finding what a branch offers: its mini-programs by name, keywords and description, and
the services its plugins offer through ``canopy_search``.

Only what the branch's storefront shows is searched (:func:`host.storefront.services.zones`:
installed there, active in the registry, loaded with the registered files), so a customer
never finds a mini-program their branch does not offer. Texts are compared after NFKC
normalisation and case folding, so ``ＣＯＦＦＥＥ``, ``Coffee`` and ``coffee`` are one query and
Chinese substrings match as they are.

Each plugin's ``canopy_search`` is called per plugin with the runtime's budget
(:meth:`host.runtime.services.PluginRuntime.search`): a plugin that raises, hangs or answers
junk loses only its own hits and is listed in :attr:`SearchResults.unavailable`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from ..i18n import pick
from ..runtime.context import PluginContext
from ..runtime.services import PluginRuntime
from ..storefront import links
from ..storefront.models import Branch
from ..storefront.services import Zone, audience, branch_info, zones

#: Longest query, in characters, after trimming (what ``canopy_search`` promises plugins).
MAX_QUERY_LENGTH = 100
#: Most results one search returns.
MAX_RESULTS = 60
#: Longest summary of a mini-program shown with a result (its description, cut).
MAX_SUMMARY = 300

MINIPROGRAM = "miniprogram"  #: a result that is a mini-program of the branch
SERVICE = "service"  #: a result a plugin gave through canopy_search

#: How well a mini-program matches, best first (scores share the [0, 1] scale of SearchHit,
#: so the two kinds merge; on a tie a mini-program comes before a plugin's hit).
EXACT_NAME = 1.0
NAME_PREFIX = 0.9
NAME_CONTAINS = 0.85
EXACT_KEYWORD = 0.8
KEYWORD = 0.7
DESCRIPTION = 0.4
#: A query of several words that matches only word by word scores this share of its weakest word.
EVERY_WORD = 0.9


class InvalidQuery(ValueError):
    """The query cannot be searched; ``errors`` maps the field (``q``) to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


@dataclass(frozen=True)
class SearchResult:
    """One thing found: a mini-program of the branch, or a service one of them offers."""

    kind: str  #: :data:`MINIPROGRAM` or :data:`SERVICE`
    plugin_id: str
    plugin_name: str  #: the mini-program's name in the request's language
    title: str
    summary: str
    href: str  #: the page to open, carrying the branch and language
    score: float
    matched: str  #: what matched: name, keyword, description, plugin — or "all" for an empty query


@dataclass(frozen=True)
class SearchResults:
    """What one search found, best first."""

    query: str  #: the query as searched (trimmed, inner white space as single spaces)
    branch: str  #: the branch's code
    results: list[SearchResult] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  #: plugins whose canopy_search failed


def normalize_query(value: object) -> str:
    """``value`` as a query: NFKC-normalised, trimmed, runs of white space as one space, at most
    :data:`MAX_QUERY_LENGTH` characters; an empty string when there is none.

    Raises :class:`InvalidQuery` for anything that is not text, holds control characters
    or is too long.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidQuery({"q": [_("The search must be text.")]})
    # Tabs and line breaks are white space like any other; other control characters
    # (and lone surrogates) have no place in a search.
    if any(unicodedata.category(ch) in ("Cc", "Cs") and not ch.isspace() for ch in value):
        raise InvalidQuery({"q": [_("The search must not contain control characters.")]})
    # NFKC: full-width letters and digits from a Chinese keyboard become the ASCII ones.
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidQuery({"q": [_("The search may be at most %(count)d characters long.", count=MAX_QUERY_LENGTH)]})
    return text


def fold(text: str) -> str:
    """``text`` as compared: NFKC-normalised (full-width letters become ASCII) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _contains(haystack: str, needle: str) -> bool:
    """Whether ``haystack`` starts with ``needle`` or — for needles of two characters or
    more — holds it anywhere (a single letter inside a word would match nearly everything)."""
    return haystack.startswith(needle) or (len(needle) >= 2 and needle in haystack)


def _term_score(needle: str, names: list[str], keywords: list[str], descriptions: list[str]) -> float:
    """How well one folded ``needle`` matches a mini-program's folded texts (0: not at all)."""
    if needle in names:
        return EXACT_NAME
    if any(name.startswith(needle) for name in names):
        return NAME_PREFIX
    if len(needle) >= 2 and any(needle in name for name in names):
        return NAME_CONTAINS
    if needle in keywords:
        return EXACT_KEYWORD
    # "电费账单" holds the keyword "电费"; "elec" begins "electricity".
    if any(_contains(keyword, needle) or (len(keyword) >= 2 and keyword in needle) for keyword in keywords):
        return KEYWORD
    if any(_contains(text, needle) for text in descriptions):
        return DESCRIPTION
    return 0.0


def match_score(query: str, zone: Zone) -> float:
    """How well ``query`` (as :func:`normalize_query` returns it) matches the zone's
    mini-program, from its manifest's names, keywords and description in both languages."""
    manifest = zone.plugin.manifest
    assert manifest is not None
    names = [fold(text) for text in manifest.name.values()]
    keywords = [fold(text) for text in manifest.keywords]
    descriptions = [fold(text) for text in (manifest.description or {}).values()]
    needle = fold(query)
    score = _term_score(needle, names, keywords, descriptions)
    words = needle.split()
    if len(words) < 2:
        return score
    each = [_term_score(word, names, keywords, descriptions) for word in words]
    return max(score, EVERY_WORD * min(each))


def _kind_order(result: SearchResult) -> int:
    return 0 if result.kind == MINIPROGRAM else 1


def search(
    session: Session,
    runtime: PluginRuntime,
    branch: Branch,
    query: object,
    locale: str,
    customer=None,
) -> SearchResults:
    """Search what ``branch``'s storefront offers for ``query``, in ``locale``.

    An empty query lists every mini-program of the branch in its grid order (there are no
    usage figures yet to rank them by popularity) and asks no plugin. ``customer`` (a
    :class:`~host.identity.models.Customer` or None) is who searches: plugins see their
    pairwise subject for them, as in any other call.
    """
    text = normalize_query(query)
    found = zones(session, runtime, branch.code, who=audience(session, None if customer is None else customer.id, branch.code))
    positions = {zone.plugin_id: index for index, zone in enumerate(found)}
    results: list[SearchResult] = []
    for zone in found:
        score = match_score(text, zone) if text else 0.0
        if text and not score:
            continue
        results.append(_miniprogram(zone, branch, locale, score, _matched(score) if text else "all"))
    unavailable: list[str] = []
    if text:
        contexts = [_context(runtime, zone, branch, locale, customer) for zone in found]
        for zone, outcome in zip(found, runtime.search(contexts, text)):
            if outcome.status == "missing":
                continue
            if not outcome.ok:
                unavailable.append(zone.plugin_id)
                continue
            name = pick(locale, zone.plugin.manifest.name)  # type: ignore[union-attr]
            for hit in outcome.value or []:
                results.append(SearchResult(
                    kind=SERVICE, plugin_id=zone.plugin_id, plugin_name=name, title=hit.title, summary=hit.summary,
                    href=links.page_url(zone.plugin_id, hit.link, branch.code, locale), score=float(hit.score),
                    matched="plugin",
                ))
    results.sort(key=lambda r: (-r.score, _kind_order(r), positions[r.plugin_id], r.title))
    return SearchResults(query=text, branch=branch.code, results=results[:MAX_RESULTS], unavailable=unavailable)


def _matched(score: float) -> str:
    if score >= NAME_CONTAINS:
        return "name"
    if score >= KEYWORD:
        return "keyword"
    if score >= DESCRIPTION:
        return "description"
    return "words"


def _miniprogram(zone: Zone, branch: Branch, locale: str, score: float, matched: str) -> SearchResult:
    manifest = zone.plugin.manifest
    assert manifest is not None
    name = pick(locale, manifest.name)
    summary = pick(locale, manifest.description) if manifest.description else ""
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    return SearchResult(
        kind=MINIPROGRAM, plugin_id=zone.plugin_id, plugin_name=name, title=name, summary=summary,
        href=links.page_url(zone.plugin_id, "/", branch.code, locale), score=score, matched=matched,
    )


def _context(runtime: PluginRuntime, zone: Zone, branch: Branch, locale: str, customer) -> PluginContext:
    """The ``ctx`` of one ``canopy_search`` call: the branch's storefront, for ``customer``."""
    return runtime.context(
        zone.plugin_id,
        branch=branch_info(branch, locale),
        locale=locale,
        approved_scopes=zone.version.approved_scopes,
        plugin=zone.plugin,
        customer_id=None if customer is None else customer.id,
    )
