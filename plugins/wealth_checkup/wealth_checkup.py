"""财富体检 Wealth check-up: a six-question risk profile with a suggested asset allocation.

The hooks stay thin: the questions live in :mod:`.questionnaire`, the rules in
:mod:`.scoring`, and the customer's saved answers in :mod:`.records`.
"""

from __future__ import annotations

from typing import Any, Mapping

from canopy_sdk import ApiError, Page, SearchHit, StorageError, Tile, hookimpl

from . import records
from .questionnaire import QUESTIONS, as_query, read_answers
from .scoring import allocation_rows, assess, summary

#: Search terms this mini-program answers, with the score of a hit on each.
SEARCH_TERMS = {
    "风险": 0.9, "风险评估": 0.95, "风险测评": 0.95, "理财": 0.8, "资产配置": 0.9, "财富": 0.8,
    "体检": 0.7, "投资": 0.6, "基金": 0.5,
    "risk": 0.9, "risk profile": 0.95, "allocation": 0.9, "asset allocation": 0.95, "wealth": 0.8,
    "invest": 0.6, "investment": 0.6, "portfolio": 0.7, "check-up": 0.7, "checkup": 0.7,
}


def language(ctx: Any) -> str:
    """Return ``"en"`` when the customer reads English, else ``"zh"`` (the default)."""
    locale = getattr(ctx, "locale", "")
    return "en" if isinstance(locale, str) and locale.lower().startswith("en") else "zh"


def _t(ctx: Any, zh: str, en: str) -> str:
    return en if language(ctx) == "en" else zh


class WealthCheckup:
    """The hook implementations of ``wealth.checkup``."""

    @hookimpl
    def canopy_storefront_tiles(self, ctx: Any) -> list[Tile]:
        """One tile: the customer's saved profile, or an invitation to take the check-up."""
        lang = language(ctx)
        saved = records.load(ctx.customer_storage) if ctx.customer is not None else None
        if saved is None:
            return [Tile(
                title=_t(ctx, "2 分钟财富体检", "2-minute wealth check-up"),
                subtitle=_t(ctx, "回答 6 个问题，看看适合您的资产配置",
                            "Answer 6 questions and see an asset mix that suits you"),
                link="/",
            )]
        result = saved["result"]
        return [Tile(
            title=_t(ctx, "我的风险类型：", "Your risk profile: ") + result["name"][lang],
            subtitle=summary(result, lang),
            link="/",
            badge=_t(ctx, f"风险等级 {result['level']}", f"Level {result['level']}"),
        )]

    @hookimpl
    def canopy_page(self, ctx: Any, path: str, query: Mapping[str, str]) -> Page | None:
        """``/``: the questionnaire; ``/result``: the result of the answers in ``query``."""
        if path == "/":
            return self._questionnaire(ctx, query)
        if path == "/result":
            return self._result(ctx, query)
        return None

    def _questionnaire(self, ctx: Any, query: Mapping[str, str], *, errors: Mapping[str, Any] | None = None,
                       status: int = 200) -> Page:
        saved = records.load(ctx.customer_storage) if ctx.customer is not None else None
        answers = dict(saved["answers"]) if saved else {}
        answers.update(read_answers(query)[0])  # answers in the link win over saved ones
        lang = language(ctx)
        return Page(
            title=_t(ctx, "财富体检", "Wealth check-up"),
            template="index.html",
            status=status,
            context={
                "title": _t(ctx, "财富体检", "Wealth check-up"),
                "questions": [question.to_dict() for question in QUESTIONS],
                "answers": answers,
                "errors": dict(errors or {}),
                "signed_in": ctx.customer is not None,
                "saved": saved,
                "saved_summary": summary(saved["result"], lang) if saved else "",
            },
        )

    def _result(self, ctx: Any, query: Mapping[str, str]) -> Page:
        answers, errors = read_answers(query)
        if errors:
            return self._questionnaire(ctx, query, errors=errors, status=400)
        result = assess(answers)
        saved = save_failed = False
        if ctx.customer is not None:
            try:
                records.save(ctx.customer_storage, answers, result)
                saved = True
            except StorageError:
                ctx.log.exception("could not save check-up answers")
                save_failed = True
        return Page(
            title=_t(ctx, "您的风险类型", "Your risk profile"),
            template="result.html",
            context={
                "title": _t(ctx, "您的风险类型", "Your risk profile"),
                "result": result,
                "rows": allocation_rows(result),
                "answers": as_query(answers),
                "signed_in": ctx.customer is not None,
                "saved": saved,
                "save_failed": save_failed,
            },
        )

    @hookimpl
    def canopy_api(self, ctx: Any, method: str, path: str, body: Any) -> Any:
        """``GET /answers``: the saved answers and result; ``DELETE /answers``: forget them."""
        if path != "/answers":
            raise ApiError(404, _t(ctx, "没有这个接口", "No such endpoint"), _t(ctx, "可用接口：/answers", "Try /answers."))
        if method not in ("GET", "DELETE"):
            raise ApiError(405, _t(ctx, "不支持该方法", "Method not allowed"),
                           _t(ctx, "/answers 只支持 GET 和 DELETE。", "/answers accepts GET and DELETE."))
        if ctx.customer is None:
            raise ApiError(401, _t(ctx, "请先登录", "Sign in first"),
                           _t(ctx, "登录后才能查看或删除保存的答案。", "Your saved answers are kept only when you are signed in."))
        if method == "DELETE":
            return {"deleted": records.forget(ctx.customer_storage)}
        saved = records.load(ctx.customer_storage)
        if saved is None:
            return {"answers": None, "result": None, "saved_at": None}
        return saved

    @hookimpl
    def canopy_search(self, ctx: Any, query: str) -> list[SearchHit]:
        """Offer the check-up for queries about risk, wealth and asset allocation."""
        needle = query.strip().lower() if isinstance(query, str) else ""
        if not needle:
            return []
        scores = [score for term, score in SEARCH_TERMS.items()
                  if term in needle or (len(needle) >= 2 and needle in term)]
        if not scores:
            return []
        lang = language(ctx)
        saved = records.load(ctx.customer_storage) if ctx.customer is not None else None
        if saved is not None:
            text = _t(ctx, "您上次的结果：", "Your last result: ") + saved["result"]["name"][lang]
        else:
            text = _t(ctx, "6 个问题，2 分钟了解您的风险类型和建议资产配置。",
                      "Six questions, two minutes: your risk profile and a suggested asset mix.")
        return [SearchHit(title=_t(ctx, "财富体检", "Wealth check-up"), summary=text, link="/", score=max(scores))]


plugin = WealthCheckup()
