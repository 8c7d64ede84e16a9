"""上海商圈优惠 Shanghai Neighbourhood Deals: merchant coupons from the Shanghai branch.

The coupons are in :mod:`.catalogue`; claiming them (one per customer, limited stock) is in
:mod:`.claims`, and buying the paid ones through the bank's payments in :mod:`.orders`. This
module maps hooks to those and turns refusals into API errors.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Mapping

from canopy_sdk import ApiError, Page, PaymentError, ScopeDenied, SearchHit, Tile, hookimpl

from . import claims, orders
from .catalogue import COUPONS, Coupon, find, shanghai_today

MAX_TILES = 3
#: Queries that ask for deals in general rather than for one merchant.
GENERAL_TERMS = ("优惠", "优惠券", "折扣", "领券", "上海", "商圈", "coupon", "coupons", "deal", "deals",
                 "discount", "voucher", "shanghai")


def language(ctx: Any) -> str:
    """Return ``"en"`` when the customer reads English, else ``"zh"`` (the default)."""
    locale = getattr(ctx, "locale", "")
    return "en" if isinstance(locale, str) and locale.lower().startswith("en") else "zh"


def _t(ctx: Any, zh: str, en: str) -> str:
    return en if language(ctx) == "en" else zh


class ShanghaiDeals:
    """The hook implementations of ``sh.deals``. ``today`` is replaceable for tests."""

    def __init__(self, today: Callable[[], date] = shanghai_today) -> None:
        self.today = today

    # -- views of the catalogue for one visitor ------------------------------------------------

    def _deal(self, ctx: Any, coupon: Coupon, today: date) -> dict[str, Any]:
        """Return a coupon as a template sees it: texts in the visitor's language plus state."""
        left = claims.remaining(ctx.storage, coupon)
        held = claims.claim_of(ctx.customer_storage, coupon.id) if ctx.customer is not None else None
        order = orders.order_of(ctx.customer_storage, coupon.id) if ctx.customer is not None and coupon.price else None
        paying = order is not None and order["status"] == "pending" and held is None
        expired = not coupon.is_valid_on(today)
        return {
            **coupon.to_dict(language(ctx)),
            "remaining": left,
            "expired": expired,
            "claimed": held is not None,
            "code": held["code"] if held else None,
            # Anonymous visitors may tap too: in the bank's app the bridge signs them in (canopy.fetch).
            "claimable": held is None and left > 0 and not expired,
            # A purchase awaiting the customer's confirmation on the bank's page (its unit is reserved).
            "confirm_url": order["confirm_url"] if paying else None,
            "intent_id": order["intent_id"] if paying else None,
        }

    def _open_deals(self, ctx: Any) -> list[dict[str, Any]]:
        """Return the deals still in stock and valid, the ones ending soonest first."""
        today = self.today()
        deals = [self._deal(ctx, coupon, today) for coupon in sorted(COUPONS, key=lambda c: c.valid_until)]
        return [deal for deal in deals if deal["remaining"] > 0 and not deal["expired"]]

    # -- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def canopy_storefront_tiles(self, ctx: Any) -> list[Tile]:
        """Up to three open deals the visitor has not claimed yet, with how many are left."""
        tiles = []
        for deal in self._open_deals(ctx):
            if deal["claimed"]:
                continue
            tiles.append(Tile(
                title=deal["name"],
                subtitle=deal["merchant"] + " · " + _t(ctx, f"有效期至 {deal['valid_until']}",
                                                         f"Valid until {deal['valid_until']}"),
                link=f"/deal?id={deal['id']}",
                badge=_t(ctx, f"仅剩 {deal['remaining']}", f"{deal['remaining']} left"),
            ))
            if len(tiles) == MAX_TILES:
                break
        return tiles

    @hookimpl
    def canopy_page(self, ctx: Any, path: str, query: Mapping[str, str]) -> Page | None:
        """``/``: every deal with its claim button; ``/deal?id=``: one deal."""
        today = self.today()
        if path == "/":
            title = _t(ctx, "上海商圈优惠", "Shanghai neighbourhood deals")
            deals = [self._deal(ctx, coupon, today) for coupon in COUPONS]
            return Page(title=title, template="index.html", context=self._page_context(ctx, title, deals=deals))
        if path == "/deal":
            coupon = find(query.get("id"))
            if coupon is None:
                title = _t(ctx, "找不到这个优惠", "Deal not found")
                return Page(title=title, template="not_found.html", status=404,
                            context=self._page_context(ctx, title))
            deal = self._deal(ctx, coupon, today)
            return Page(title=deal["name"], template="deal.html",
                        context=self._page_context(ctx, deal["name"], deal=deal))
        return None

    @staticmethod
    def _page_context(ctx: Any, title: str, **extra: Any) -> dict[str, Any]:
        return {"title": title, "signed_in": ctx.customer is not None, **extra}

    @hookimpl
    def canopy_api(self, ctx: Any, method: str, path: str, body: Any) -> Any:
        """``POST /claim`` ``{"coupon_id": ...}`` claims a free coupon or starts paying for a paid
        one; ``GET /claims`` lists the customer's."""
        routes = {"/claim": ("POST", self._claim), "/claims": ("GET", self._list_claims)}
        if path not in routes:
            raise ApiError(404, _t(ctx, "没有这个接口", "No such endpoint"),
                           _t(ctx, "可用接口：POST /claim，GET /claims。", "Try POST /claim or GET /claims."))
        allowed, handler = routes[path]
        if method != allowed:
            raise ApiError(405, _t(ctx, "不支持该方法", "Method not allowed"),
                           _t(ctx, f"{path} 只支持 {allowed}。", f"{path} accepts {allowed} only."))
        if ctx.customer is None:
            raise ApiError(401, _t(ctx, "请先登录", "Sign in first"),
                           _t(ctx, "登录后才能领取和查看优惠券。", "Sign in to claim and see your coupons."))
        return handler(ctx, body)

    def _claim(self, ctx: Any, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, _t(ctx, "请求格式错误", "Malformed request"),
                           _t(ctx, '请求体应为 {"coupon_id": "..."}。', 'The body must be {"coupon_id": "..."}.'))
        coupon_id = body.get("coupon_id")
        if not isinstance(coupon_id, str) or not coupon_id:
            raise ApiError(400, _t(ctx, "缺少优惠券编号", "coupon_id is required"),
                           _t(ctx, "coupon_id 必须是非空字符串。", "coupon_id must be a non-empty string."))
        coupon = find(coupon_id)
        if coupon is None:
            raise ApiError(404, _t(ctx, "没有这张优惠券", "No such coupon"),
                           _t(ctx, f"找不到优惠券 {coupon_id[:40]!r}。", f"There is no coupon {coupon_id[:40]!r}."))
        try:
            if coupon.price is not None:
                return orders.start(ctx, coupon, today=self.today())
            record, left = claims.claim(ctx.storage, ctx.customer_storage, coupon, today=self.today(), log=ctx.log)
        except claims.AlreadyClaimed:
            raise ApiError(409, _t(ctx, "您已领取过这张优惠券", "Already claimed"),
                           _t(ctx, "每位客户限领一张。", "Each customer may claim this coupon once.")) from None
        except claims.SoldOut:
            raise ApiError(410, _t(ctx, "已领完", "Sold out"),
                           _t(ctx, "这张优惠券已经被领完了。", "All of these coupons have been claimed.")) from None
        except claims.Expired:
            raise ApiError(410, _t(ctx, "优惠已结束", "Deal has ended"),
                           _t(ctx, f"这张优惠券有效期至 {coupon.valid_until.isoformat()}。",
                              f"This coupon was valid until {coupon.valid_until.isoformat()}.")) from None
        except claims.Busy:
            raise ApiError(429, _t(ctx, "领取人数过多", "Too many claims at once"),
                           _t(ctx, "请稍后再试。", "Please try again in a moment.")) from None
        except ScopeDenied:
            raise ApiError(403, _t(ctx, "暂不能购买", "Buying is not available"),
                           _t(ctx, "您尚未授权本服务发起支付。", "You have not allowed this service to ask for payments.")) from None
        except PaymentError as exc:
            ctx.log.warning("the bank refused a payment request: %s", exc)
            raise ApiError(exc.status if 400 <= exc.status < 500 else 400, _t(ctx, "银行未受理支付", "Payment refused"),
                           _t(ctx, "银行未能受理这笔支付，请稍后再试。",
                              "The bank could not take this payment; please try again later.")) from None
        return {"claimed": True, "code": record["code"], "remaining": left}

    @hookimpl
    def canopy_on_event(self, ctx: Any, event: Any) -> None:
        """A paid coupon's payment succeeded (grant it) or did not (return its reserved unit)."""
        orders.on_event(ctx, event)

    def _list_claims(self, ctx: Any, body: Any) -> dict[str, Any]:
        lang = language(ctx)
        held = []
        for coupon in COUPONS:
            record = claims.claim_of(ctx.customer_storage, coupon.id)
            if record is not None:
                held.append({**coupon.to_dict(lang), "code": record["code"],
                             "claimed_at": record.get("claimed_at") if isinstance(record.get("claimed_at"), str) else None})
        return {"claims": held}

    @hookimpl
    def canopy_search(self, ctx: Any, query: str) -> list[SearchHit]:
        """Match merchant names, districts and keywords in both languages; general terms list all."""
        needle = query.strip().lower() if isinstance(query, str) else ""
        if not needle:
            return []
        general = any(term in needle or (len(needle) >= 2 and needle in term) for term in GENERAL_TERMS)
        today = self.today()
        hits = []
        for coupon in COUPONS:
            if not coupon.is_valid_on(today):
                continue
            specific = any(term in needle or (len(needle) >= 2 and needle in term) for term in coupon.search_terms())
            if specific or general:
                lang = language(ctx)
                hits.append(SearchHit(
                    title=coupon.name[lang],
                    summary=f"{coupon.merchant[lang]} · {coupon.discount[lang]}",
                    link=f"/deal?id={coupon.id}",
                    score=0.8 if specific else 0.5,
                ))
        return sorted(hits, key=lambda hit: -hit.score)[:20]


plugin = ShanghaiDeals()
