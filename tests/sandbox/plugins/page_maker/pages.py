"""A partner plugin whose pages come from templates: one well-behaved page (rendered the same
in the worker as in the host), and templates that attack whoever renders them."""

from canopy_sdk import Page, Tile, hookimpl

#: The context of the well-behaved page: escaping, non-ASCII text, nested values.
CONTEXT = {"value": "<script>alert('x')</script>", "name": "上海 & Shanghai", "items": [{"n": 1}, {"n": 2}]}

#: path → template; each hostile one is named for what it does.
TEMPLATES = {
    "/": "page.html",
    "/loop": "loop.html",  # nested loops without output: never ends
    "/huge": "huge.html",  # output without end
    "/escape": "escape.html",  # reaches for Python internals
    "/undefined": "undefined.html",
}


class PageMaker:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Pages", subtitle=ctx.branch.code)]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        template = TEMPLATES.get(path)
        if template is None:
            return None
        return Page(title="Pages", template=template, context=CONTEXT if path == "/" else {"filler": "x" * 100})


plugin = PageMaker()
