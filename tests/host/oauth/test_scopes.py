"""host.oauth.scopes: the scope catalog built from canopy_scope_definitions results."""

from __future__ import annotations

import copy

import pytest

from host.oauth.default_scopes import SCOPES, canopy_scope_definitions
from host.oauth.scopes import ScopeCatalog, ScopeCatalogError, ScopeDefinition

GOOD = {
    "name": "bills:read",
    "description": {"zh": "查看账单", "en": "See your bills"},
    "sensitivity": "low",
    "needs_consent": True,
}


def definition(**changes):
    data = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def test_the_default_scopes_make_a_catalog():
    catalog = ScopeCatalog.from_hook_results([canopy_scope_definitions()])

    assert [d.name for d in catalog] == sorted(s["name"] for s in SCOPES)
    assert catalog.needs_consent("profile.basic:read") is True
    assert catalog.needs_consent("payments:create") is False
    assert catalog["payments:create"].sensitivity == "medium"


def test_results_of_several_hooks_combine_and_empty_ones_are_skipped():
    catalog = ScopeCatalog.from_hook_results([SCOPES, None, [], [GOOD]])

    assert "bills:read" in catalog and "payments:create" in catalog
    assert isinstance(catalog["bills:read"], ScopeDefinition)


def test_lookups():
    catalog = ScopeCatalog.from_hook_results([[GOOD]])

    assert "bills:read" in catalog
    assert "bills:write" not in catalog
    assert 42 not in catalog
    with pytest.raises(KeyError):
        catalog["bills:write"]
    assert catalog.unknown(["x:y", "bills:read", "a:b"]) == ["x:y", "a:b"]
    assert catalog.unknown([]) == []


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "See your bills"), ("en-GB", "See your bills"), ("zh-CN", "查看账单"), ("fr", "查看账单")],
)
def test_describe_in_the_customers_language(locale, expected):
    assert ScopeCatalog.from_hook_results([[GOOD]])["bills:read"].describe(locale) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        pytest.param(definition(name=...), "malformed scope definition", id="no-name"),
        pytest.param(definition(description=...), "malformed scope definition", id="no-description"),
        pytest.param(definition(sensitivity=...), "malformed scope definition", id="no-sensitivity"),
        pytest.param(definition(needs_consent=...), "malformed scope definition", id="no-needs-consent"),
        pytest.param("bills:read", "malformed scope definition", id="a-string"),
        pytest.param(None, "malformed scope definition", id="none"),
        pytest.param(definition(description="See your bills"), "malformed scope definition", id="description-text"),
        pytest.param(definition(name="bills"), "must look like 'resource:action'", id="name-without-action"),
        pytest.param(definition(name="Bills:read"), "must look like 'resource:action'", id="name-upper-case"),
        pytest.param(definition(name="bills:read\n"), "must look like 'resource:action'", id="name-trailing-newline"),
        pytest.param(definition(name="bills:read "), "must look like 'resource:action'", id="name-trailing-space"),
        pytest.param(definition(name=":read"), "must look like 'resource:action'", id="name-no-resource"),
        pytest.param(definition(name="bills..x:read"), "must look like 'resource:action'", id="name-double-dot"),
        pytest.param(definition(name=7), "must look like 'resource:action'", id="name-number"),
        pytest.param(definition(description={"zh": "查看账单"}), "description in zh and en", id="description-no-en"),
        pytest.param(
            definition(description={"zh": "查看账单", "en": "See", "fr": "Voir"}), "description in zh and en", id="description-extra"
        ),
        pytest.param(definition(description={"zh": "", "en": "See"}), "description in zh and en", id="description-empty"),
        pytest.param(definition(description={"zh": 1, "en": "See"}), "description in zh and en", id="description-number"),
        pytest.param(definition(sensitivity="extreme"), "sensitivity must be one of", id="sensitivity-unknown"),
        pytest.param(definition(sensitivity=["low"]), "sensitivity must be one of", id="sensitivity-list"),
        pytest.param(definition(needs_consent="yes"), "needs_consent must be true or false", id="needs-consent-text"),
        pytest.param(definition(needs_consent=1), "needs_consent must be true or false", id="needs-consent-int"),
    ],
)
def test_malformed_definitions_are_refused(item, message):
    with pytest.raises(ScopeCatalogError, match=message):
        ScopeCatalog.from_hook_results([[item]])


def test_a_hook_result_that_is_not_a_list_of_definitions_is_refused():
    with pytest.raises(ScopeCatalogError):
        ScopeCatalog.from_hook_results([GOOD])  # one definition instead of a list of them


def test_a_scope_defined_twice_is_refused():
    with pytest.raises(ScopeCatalogError, match="'bills:read' is defined twice"):
        ScopeCatalog.from_hook_results([[GOOD], [definition(sensitivity="high")]])
    with pytest.raises(ScopeCatalogError, match="'payments:create' is defined twice"):
        ScopeCatalog.from_hook_results([SCOPES, [definition(name="payments:create")]])
    with pytest.raises(ScopeCatalogError, match="defined twice"):
        ScopeCatalog([ScopeDefinition(**GOOD), ScopeDefinition(**GOOD)])


def test_a_definition_cannot_be_changed_after_the_catalog_is_built():
    catalog = ScopeCatalog.from_hook_results([[GOOD]])
    with pytest.raises(AttributeError):
        catalog["bills:read"].needs_consent = False  # type: ignore[misc]
