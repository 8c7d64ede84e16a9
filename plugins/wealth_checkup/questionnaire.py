"""The risk-profile questionnaire: its six questions and reading answers from a query string.

Each option carries the points it adds to the risk score (see :mod:`.scoring`). Option codes,
not labels, travel in URLs and storage, so wording can change without breaking saved answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Option:
    """One answer to a question, with its label in both languages and its points."""

    code: str
    zh: str
    en: str
    points: int


@dataclass(frozen=True)
class Question:
    """One question of the check-up."""

    id: str
    zh: str
    en: str
    options: tuple[Option, ...]

    def option(self, code: str) -> Option | None:
        """Return the option with ``code``, or None."""
        return next((option for option in self.options if option.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        """Return the question as plain data for a template."""
        return {
            "id": self.id,
            "zh": self.zh,
            "en": self.en,
            "options": [{"code": o.code, "zh": o.zh, "en": o.en} for o in self.options],
        }


QUESTIONS: tuple[Question, ...] = (
    Question("age", "您的年龄段是？", "What is your age band?", (
        Option("under30", "30 岁以下", "Under 30", 4),
        Option("30to44", "30–44 岁", "30–44", 3),
        Option("45to59", "45–59 岁", "45–59", 2),
        Option("60plus", "60 岁及以上", "60 or over", 1),
    )),
    Question("horizon", "这笔资金您计划投资多久？", "How long do you plan to invest this money?", (
        Option("lt1", "1 年以内", "Less than 1 year", 0),
        Option("1to3", "1–3 年", "1–3 years", 1),
        Option("3to5", "3–5 年", "3–5 years", 2),
        Option("5to10", "5–10 年", "5–10 years", 3),
        Option("gt10", "10 年以上", "More than 10 years", 4),
    )),
    Question("drawdown", "如果您的投资一个月内下跌 20%，您会？",
             "If your investments fell 20% in a month, you would…", (
        Option("sell_all", "全部卖出，避免更多损失", "Sell everything to avoid further losses", 0),
        Option("sell_some", "卖出一部分", "Sell some of them", 1),
        Option("hold", "继续持有，等待回升", "Hold and wait for a recovery", 3),
        Option("buy_more", "趁低价买入更多", "Buy more while prices are low", 4),
    )),
    Question("income", "您的收入稳定性如何？", "How stable is your income?", (
        Option("unstable", "不稳定或暂无收入", "Unstable, or no income at present", 0),
        Option("variable", "有收入但波动较大", "Regular but it varies a lot", 1),
        Option("stable", "稳定", "Stable", 2),
        Option("very_stable", "非常稳定，且有充足储蓄", "Very stable, with ample savings", 3),
    )),
    Question("experience", "您投资过以下哪类产品？（选最高一项）",
             "Which have you invested in? (choose the highest)", (
        Option("none", "没有投资经验", "None yet", 0),
        Option("deposits", "存款、银行理财", "Deposits and bank wealth products", 1),
        Option("funds", "基金、债券", "Funds and bonds", 2),
        Option("stocks", "股票、期货等", "Stocks, futures and the like", 3),
    )),
    Question("goal", "您最主要的投资目标是？", "What is your main investment goal?", (
        Option("preserve", "保住本金", "Keep my capital safe", 0),
        Option("income", "获得稳定收益", "Earn a steady income", 1),
        Option("balanced", "收益与增长兼顾", "A balance of income and growth", 2),
        Option("growth", "追求长期高增长", "Maximise long-term growth", 4),
    )),
)

QUESTIONS_BY_ID: dict[str, Question] = {question.id: question for question in QUESTIONS}

#: Per-question error messages, in both languages.
MISSING = {"zh": "请选择一个选项。", "en": "Please choose an answer."}
NOT_AN_OPTION = {"zh": "这不是有效的选项，请重新选择。", "en": "That is not one of the options; please choose again."}


def read_answers(query: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Read the answers in ``query`` (a query string or a stored mapping).

    Returns ``(answers, errors)``: the valid answers by question id, and a message (``zh``
    and ``en``) for every question that is unanswered or answered with something that is not
    one of its options. Anything else in ``query`` is ignored; nothing here raises.
    """
    answers: dict[str, str] = {}
    errors: dict[str, dict[str, str]] = {}
    if not isinstance(query, Mapping):
        query = {}
    for question in QUESTIONS:
        value = query.get(question.id)
        if value is None or value == "":
            errors[question.id] = MISSING
        elif isinstance(value, str) and question.option(value) is not None:
            answers[question.id] = value
        else:
            errors[question.id] = NOT_AN_OPTION
    return answers, errors


def as_query(answers: Mapping[str, str]) -> dict[str, str]:
    """Return the answers in question order, ready to build a link to ``/result``."""
    return {question.id: answers[question.id] for question in QUESTIONS if question.id in answers}
