"""host.payments.rails: money enters the ledger through the rail of the ``canopy_payment_rail``
host hook — the simulated one unless the bank's extension answers first."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from canopy_sdk import hookimpl
from canopy_sdk.errors import InvalidPayment
from sqlalchemy import func, select

from host.payments import rails
from host.payments.models import Account, AccountKind, Transfer, TransferKind
from host.runtime import get_runtime
from host.runtime.manager import CanopyPluginManager
from tests.host.payments.test_flow import ledger_ok

from .risk.test_rules import PLUGIN_TOML


class CoreBanking:
    """A stand-in for the bank's own rail extension: records its calls, refuses when told to."""

    name = "core-banking"

    def __init__(self, refuse: str | None = None, answer: object = "cb-0001") -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse
        self.answer = answer

    def debit(self, customer_id, amount, currency, reference):
        self.calls.append((customer_id, amount, currency, reference))
        if self.refuse:
            raise rails.RailRefused(self.refuse)
        return self.answer


class Extension:
    def __init__(self, rail) -> None:
        self.rail = rail

    @hookimpl
    def canopy_payment_rail(self):
        return self.rail


def _manager(*plugins) -> SimpleNamespace:
    pm = CanopyPluginManager()
    pm.register(rails, name="defaults")  # registered first, as the host does: it must still answer last
    for number, plugin in enumerate(plugins):
        pm.register(plugin, name=f"bank.extension.{number}")
    return SimpleNamespace(pm=pm)


def test_the_default_rail_is_the_simulated_one(app):
    rail = rails.rail_for(get_runtime(app))
    assert rail is rails.SIMULATED and rail.name == "simulated"


def test_the_banks_rail_answers_before_the_simulated_one():
    bank = CoreBanking()
    assert rails.rail_for(_manager(Extension(bank))) is bank
    assert rails.rail_for(_manager()) is rails.SIMULATED
    assert rails.rail_for(_manager(Extension(None))) is rails.SIMULATED  # no answer: the next one's


@pytest.mark.parametrize("answer", [object(), SimpleNamespace(name="", debit=lambda *a: "x"),
                                    SimpleNamespace(name="n" * 33, debit=lambda *a: "x"),
                                    SimpleNamespace(name="no-debit")])
def test_a_rail_that_is_not_one_is_refused_by_name(answer):
    with pytest.raises(TypeError, match="canopy_payment_rail answered"):
        rails.rail_for(_manager(Extension(answer)))


@pytest.fixture
def customer_id(demo_app):
    from host.db import get_database
    from host.identity.models import Customer

    with demo_app.app_context(), get_database(demo_app).transaction() as session:
        return session.scalar(select(Customer.id).where(Customer.phone == "13800000001"))


def _run(app, fn):
    from host.db import get_database

    with app.app_context(), get_database(app).transaction(write=True) as session:
        return fn(session)


def _balance(session, customer_id):
    return session.scalar(select(Account.balance).where(Account.kind == AccountKind.CUSTOMER, Account.owner == customer_id))


def test_a_top_up_through_the_simulated_rail_says_so(demo_app, customer_id):
    before = _run(demo_app, lambda s: _balance(s, customer_id))
    transfer = _run(demo_app, lambda s: rails.top_up(s, customer_id, 2_500, "CNY"))
    assert transfer.kind == TransferKind.FUNDING and transfer.amount == 2_500
    assert transfer.description.startswith("top-up via the simulated rail (sim-tu_")
    assert _run(demo_app, lambda s: _balance(s, customer_id)) == before + 2_500
    ledger_ok(demo_app)


def test_the_bank_rail_is_asked_with_a_fresh_reference_each_time(demo_app, customer_id):
    bank = CoreBanking()
    first = _run(demo_app, lambda s: rails.top_up(s, customer_id, 100, "CNY", rail=bank))
    _run(demo_app, lambda s: rails.top_up(s, customer_id, 200, "CNY", rail=bank))
    assert [(c[1], c[2]) for c in bank.calls] == [(100, "CNY"), (200, "CNY")]
    assert bank.calls[0][0] == customer_id and bank.calls[0][3] != bank.calls[1][3]
    assert first.description == "top-up via the core-banking rail (cb-0001)"


def _funding_count(session):
    return session.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == TransferKind.FUNDING))


@pytest.mark.parametrize("rail", [CoreBanking(refuse="the deposit account holds too little"), CoreBanking(answer=None),
                                  CoreBanking(answer="r" * 65)])
def test_a_refusal_or_a_junk_answer_writes_nothing(demo_app, customer_id, rail):
    before = _run(demo_app, lambda s: (_balance(s, customer_id), _funding_count(s)))
    with pytest.raises(rails.RailRefused):
        _run(demo_app, lambda s: rails.top_up(s, customer_id, 100, "CNY", rail=rail))
    assert _run(demo_app, lambda s: (_balance(s, customer_id), _funding_count(s))) == before


@pytest.mark.parametrize(("amount", "currency", "field"), [
    (0, "CNY", "amount"), (-5, "CNY", "amount"), (1.5, "CNY", "amount"), ("100", "CNY", "amount"), (True, "CNY", "amount"),
    (10**20, "CNY", "amount"), (100, "XXX", "currency"), (100, "CN", "currency"), (100, None, "currency"),
])
def test_bad_amounts_and_currencies_never_reach_the_rail(demo_app, customer_id, amount, currency, field):
    bank = CoreBanking()
    with pytest.raises(InvalidPayment) as refused:
        _run(demo_app, lambda s: rails.top_up(s, customer_id, amount, currency, rail=bank))
    assert refused.value.field == field and bank.calls == []


def test_a_mini_program_may_not_be_the_rail(app_factory, tmp_path):
    folder = tmp_path / "plugins" / "greedy"
    folder.mkdir(parents=True)
    (folder / "plugin.toml").write_text(PLUGIN_TOML, encoding="utf-8")
    (folder / "main.py").write_text(
        "from canopy_sdk import hookimpl\n\n\nclass Plugin:\n    @hookimpl\n    def canopy_payment_rail(self):\n"
        "        return None\n\n\nplugin = Plugin()\n", encoding="utf-8")
    runtime = get_runtime(app_factory(PLUGIN_PATHS=[str(tmp_path / "plugins")]))
    [refused] = runtime.refused
    assert "canopy_payment_rail" in refused.problem
    assert rails.rail_for(runtime) is rails.SIMULATED
