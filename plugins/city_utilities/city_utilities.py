"""城市缴费 City Utilities: CITYPOWER's electricity, water and gas bills in the bank's app.

A partner mini-program: the host runs it in the sandbox, so this module imports only the
standard library, ``canopy_sdk`` and its own modules. Customers link their accounts
(:mod:`.accounts`); bills come from the partner's simulated billing back end
(:mod:`.billing`); paying one goes through the bank's own payments (:mod:`.payments`): the
plugin asks for a payment intent, the customer confirms it on the bank's page, and the
``payment_intent.succeeded`` event marks the bill paid.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Mapping

from canopy_sdk import ApiError, Page, PaymentError, ScopeDenied, SearchHit, Tile, hookimpl

from . import accounts, payments
from .billing import CURRENCY, UTILITIES, billing_period, format_amount, monthly_bill, shanghai_today

#: Search terms and the utility each one asks about (None: all of them).
SEARCH_TERMS: dict[str, str | None] = {
    "电费": "electricity", "用电": "electricity", "electricity": "electricity",
    "electric": "electricity", "power": "electricity",
    "水费": "water", "自来水": "water", "用水": "water", "water": "water", "water bill": "water",
    "燃气": "gas", "燃气费": "gas", "煤气": "gas", "天然气": "gas", "gas": "gas", "gas bill": "gas",
    "缴费": None, "生活缴费": None, "账单": None, "水电煤": None, "utility": None, "utilities": None,
    "bill": None, "bills": None,
}


def language(ctx: Any) -> str:
    """Return ``"en"`` when the customer reads English, else ``"zh"`` (the default)."""
    locale = getattr(ctx, "locale", "")
    return "en" if isinstance(locale, str) and locale.lower().startswith("en") else "zh"


def _t(ctx: Any, zh: str, en: str) -> str:
    return en if language(ctx) == "en" else zh


class CityUtilities:
    """The hook implementations of ``city.utilities``. ``today`` is replaceable for tests."""

    def __init__(self, today: Callable[[], date] = shanghai_today) -> None:
        self.today = today

    # -- the customer's statement --------------------------------------------------------------

    def _statement(self, ctx: Any) -> dict[str, Any]:
        """Return the customer's linked accounts with this month's bills, paid or not, as plain data.

        ``total_due`` counts the unpaid ones; a bill whose payment awaits the customer's
        confirmation carries its ``confirm_url``.
        """
        lang = language(ctx)
        period = billing_period(self.today())
        bills = []
        for entry in accounts.linked(ctx.customer_storage):
            bill = monthly_bill(entry["utility"], entry["account_no"], period)
            utility = UTILITIES[entry["utility"]]
            record = payments.record_of(ctx.customer_storage, bill.id)
            paid = record is not None and record["status"] == "paid" and record["amount"] == bill.amount
            pending = record is not None and record["status"] == "pending"
            bills.append({
                **bill.to_dict(),
                "status": "paid" if paid else "unpaid",
                "paid_at": record.get("paid_at") if paid and isinstance(record.get("paid_at"), str) else None,
                "confirm_url": record["confirm_url"] if pending else None,
                "utility_name": utility.name[lang],
                "unit": utility.unit[lang],
                "amount_display": format_amount(bill.amount),
                "account_masked": accounts.masked(entry["account_no"]),
            })
        total = sum(bill["amount"] for bill in bills if bill["status"] == "unpaid")
        return {"period": period, "bills": bills, "total_due": total, "total_display": format_amount(total)}

    # -- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def canopy_storefront_tiles(self, ctx: Any) -> list[Tile]:
        """The total due across the customer's accounts, or an invitation to link one."""
        statement = self._statement(ctx) if ctx.customer is not None else None
        if not statement or not statement["bills"]:
            return [Tile(
                title=_t(ctx, "绑定水电燃气账户", "Link your utility accounts"),
                subtitle=_t(ctx, "电费、水费、燃气费账单一处查看", "See electricity, water and gas bills in one place"),
                link="/link",
            )]
        due = [bill for bill in statement["bills"] if bill["status"] == "unpaid"]
        if not due:
            return [Tile(title=_t(ctx, "本期账单已缴清", "All bills paid"),
                         subtitle=_t(ctx, f"{statement['period']} 账期", f"Billing month {statement['period']}"),
                         link="/bills")]
        count = len(due)
        kinds = ("、" if language(ctx) == "zh" else ", ").join(dict.fromkeys(b["utility_name"] for b in due))
        return [Tile(
            title=_t(ctx, f"待缴 {statement['total_display']}", f"{statement['total_display']} due"),
            subtitle=_t(ctx, f"{count} 个账户 · {kinds}", f"{count} account{'s' if count > 1 else ''} · {kinds}"),
            link="/bills",
            badge=_t(ctx, f"{count} 笔账单", f"{count} bill{'s' if count > 1 else ''}"),
        )]

    @hookimpl
    def canopy_page(self, ctx: Any, path: str, query: Mapping[str, str]) -> Page | None:
        """``/``: overview; ``/bills``: the bills due; ``/link``: link or unlink an account."""
        views = {
            "/": (("城市缴费", "City utilities"), "index.html"),
            "/bills": (("待缴账单", "Bills due"), "bills.html"),
            "/link": (("绑定账户", "Link an account"), "link.html"),
        }
        if path not in views:
            return None
        (zh, en), template = views[path]
        title = _t(ctx, zh, en)
        lang = language(ctx)
        context: dict[str, Any] = {
            "title": title,
            "signed_in": ctx.customer is not None,
            "currency": CURRENCY,
            "utilities": [{"code": u.code, "name": u.name[lang]} for u in UTILITIES.values()],
            "max_accounts": accounts.MAX_ACCOUNTS,
        }
        if ctx.customer is not None:
            context.update(self._statement(ctx))
        else:
            context.update(period=billing_period(self.today()), bills=[], total_due=0, total_display=format_amount(0))
        if path == "/link":
            wanted = query.get("utility")
            context["selected"] = wanted if isinstance(wanted, str) and wanted in UTILITIES else ""
        return Page(title=title, template=template, context=context)

    @hookimpl
    def canopy_api(self, ctx: Any, method: str, path: str, body: Any) -> Any:
        """``GET|POST /accounts``, ``DELETE /accounts/<utility>/<account_no>``, ``GET /bills``,
        ``POST /bills/<bill_id>/pay``."""
        parts = path.strip("/").split("/") if isinstance(path, str) else []
        if parts == ["accounts"]:
            handlers = {"GET": self._list_accounts, "POST": self._link}
        elif len(parts) == 3 and parts[0] == "accounts":
            handlers = {"DELETE": lambda ctx, body: self._unlink(ctx, parts[1], parts[2])}
        elif parts == ["bills"]:
            handlers = {"GET": lambda ctx, body: self._statement(ctx)}
        elif len(parts) == 3 and parts[0] == "bills" and parts[2] == "pay":
            handlers = {"POST": lambda ctx, body: self._pay(ctx, parts[1], body)}
        else:
            raise ApiError(404, _t(ctx, "没有这个接口", "No such endpoint"),
                           _t(ctx, "可用接口：/accounts、/bills。", "Try /accounts or /bills."))
        if method not in handlers:
            allowed = " ".join(handlers)
            raise ApiError(405, _t(ctx, "不支持该方法", "Method not allowed"),
                           _t(ctx, f"这个接口只支持 {allowed}。", f"This endpoint accepts {allowed} only."))
        if ctx.customer is None:
            raise ApiError(401, _t(ctx, "请先登录", "Sign in first"),
                           _t(ctx, "登录后才能查看和绑定账户。", "Sign in to see and link your accounts."))
        try:
            return handlers[method](ctx, body)
        except accounts.InvalidAccount as exc:
            title = f"Invalid {exc.field}" if exc.field else "Malformed request"
            raise ApiError(400, _t(ctx, "请求内容有误", title), exc.message[language(ctx)]) from None
        except (accounts.DuplicateAccount, accounts.TooManyAccounts) as exc:
            title = _t(ctx, "已绑定", "Already linked") if isinstance(exc, accounts.DuplicateAccount) \
                else _t(ctx, "绑定数量已达上限", "Too many accounts")
            raise ApiError(409, title, exc.message[language(ctx)]) from None
        except (accounts.Busy, payments.Busy) as exc:
            raise ApiError(429, _t(ctx, "请稍后再试", "Try again"), exc.message[language(ctx)]) from None
        except payments.AlreadyPaid as exc:
            raise ApiError(409, _t(ctx, "已缴清", "Already paid"), exc.message[language(ctx)]) from None
        except ScopeDenied:
            raise ApiError(403, _t(ctx, "暂不能缴费", "Payment not available"),
                           _t(ctx, "您尚未授权本服务发起缴费。", "You have not allowed this service to ask for payments."),
                           ) from None
        except PaymentError as exc:
            ctx.log.warning("the bank refused a payment request: %s", exc)
            raise ApiError(exc.status if 400 <= exc.status < 500 else 400, _t(ctx, "银行未受理缴费", "Payment refused"),
                           _t(ctx, "银行未能受理这笔缴费，请稍后再试。", "The bank could not take this payment; please try again later."),
                           ) from None

    def _list_accounts(self, ctx: Any, body: Any) -> dict[str, Any]:
        return {"accounts": accounts.linked(ctx.customer_storage), "limit": accounts.MAX_ACCOUNTS}

    def _link(self, ctx: Any, body: Any) -> dict[str, Any]:
        utility, account_no = accounts.read_request(body)
        entry = accounts.link(ctx.customer_storage, utility, account_no)
        bill = monthly_bill(utility, account_no, billing_period(self.today()))
        return {"linked": True, "account": entry, "bill": bill.to_dict()}

    def _unlink(self, ctx: Any, utility: str, account_no: str) -> dict[str, Any]:
        utility, account_no = accounts.read_request({"utility": utility, "account_no": account_no})
        if not accounts.unlink(ctx.customer_storage, utility, account_no):
            raise ApiError(404, _t(ctx, "未绑定这个账户", "Account not linked"),
                           _t(ctx, "您没有绑定这个账户。", "This account is not linked to you."))
        return {"unlinked": True}

    def _pay(self, ctx: Any, bill_id: str, body: Any) -> dict[str, Any]:
        if body not in (None, {}):
            raise ApiError(400, _t(ctx, "请求内容有误", "Malformed request"),
                           _t(ctx, "缴费请求不需要请求体。", "Paying a bill takes no request body."))
        parsed = payments.parse_bill_id(bill_id)
        if parsed is None:
            raise ApiError(400, _t(ctx, "账单编号有误", "Invalid bill_id"),
                           _t(ctx, "bill_id 的格式应为 类型-户号-年月，例如 gas-12345678-202610。",
                              "bill_id must look like gas-12345678-202610 (utility-account-month)."))
        utility, account_no, period = parsed
        mine = any(e["utility"] == utility and e["account_no"] == account_no
                   for e in accounts.linked(ctx.customer_storage))
        if not mine or period != billing_period(self.today()):
            raise ApiError(404, _t(ctx, "没有这张待缴账单", "No such bill"),
                           _t(ctx, "您绑定的账户本期没有这张账单。", "None of your linked accounts has this bill due."))
        return payments.start(ctx, monthly_bill(utility, account_no, period))

    @hookimpl
    def canopy_on_event(self, ctx: Any, event: Any) -> None:
        """A payment of a bill succeeded (the bill is paid) or did not (it stays unpaid)."""
        payments.on_event(ctx, event)

    @hookimpl
    def canopy_search(self, ctx: Any, query: str) -> list[SearchHit]:
        """Offer bills for 电费 / 水费 / 燃气 / electricity / water / gas and general bill queries."""
        needle = query.strip().lower() if isinstance(query, str) else ""
        if not needle:
            return []
        matched = [utility for term, utility in SEARCH_TERMS.items()
                   if term in needle or (len(needle) >= 2 and needle in term)]
        if not matched:
            return []
        specific = {utility for utility in matched if utility}
        wanted = specific or set(UTILITIES)  # "water bill" asks about water, "bills" about all
        bills = self._statement(ctx)["bills"] if ctx.customer is not None else []
        hits = []
        for code in (code for code in UTILITIES if code in wanted):
            utility = UTILITIES[code]
            linked = [bill for bill in bills if bill["utility"] == code]
            due = [bill for bill in linked if bill["status"] == "unpaid"]
            if due:
                amount = format_amount(sum(bill["amount"] for bill in due))
                summary = _t(ctx, f"{len(due)} 个账户待缴 {amount}", f"{amount} due on {len(due)} account(s)")
                link = "/bills"
            elif linked:
                summary = _t(ctx, "本期账单已缴清", "This month's bills are paid")
                link = "/bills"
            else:
                summary = _t(ctx, f"绑定{utility.name['zh']}账户，按月查看账单",
                             f"Link your {utility.name['en'].lower()} account to see your monthly bills")
                link = f"/link?utility={code}"
            hits.append(SearchHit(
                title=_t(ctx, f"{utility.name['zh']}账单", f"{utility.name['en']} bills"),
                summary=summary, link=link, score=0.8 if specific else 0.6,
            ))
        return hits


plugin = CityUtilities()
