"""The search centre: a branch's mini-programs found by name, keywords and description in
Chinese and English, plus the hits its installed plugins give through ``canopy_search``.

:func:`host.search.services.search` is the one place the rules live; the page ``/search``
(:mod:`.views`) and ``GET /api/v1/search`` (:mod:`.api`) both call it.
"""
