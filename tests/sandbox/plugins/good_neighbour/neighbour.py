"""A well-behaved partner plugin: the neighbour whose zone must survive the attacks."""

from canopy_sdk import Page, Tile, hookimpl


class Neighbour:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title=f"Hello from {ctx.plugin_id}", subtitle=ctx.branch.code)]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        return Page(title="Neighbour", html=f"<p>{ctx.locale}</p>") if path == "/" else None

    @hookimpl
    def canopy_api(self, ctx, method, path, body):
        if path == "/storage":
            version = ctx.storage.set("greeting", body)
            return {"version": version, "read": ctx.storage.get("greeting")}
        return {"method": method, "path": path, "body": body, "customer": ctx.customer and ctx.customer.subject}


plugin = Neighbour()
