"""The coupons the Shanghai branch offers this season: a fixed catalogue agreed with the merchants.

Each coupon has a total stock (how many customers may claim it), a last valid day (inclusive,
China Standard Time) and a code prefix the merchant's till recognises. Most are free; one with
a ``price`` (whole fen, CNY) is bought through the bank's payments (:mod:`.orders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

#: China Standard Time; Shanghai keeps no daylight-saving time.
CHINA_TIME = timezone(timedelta(hours=8))
#: The currency of coupon prices; prices are integer fen.
CURRENCY = "CNY"


@dataclass(frozen=True)
class Coupon:
    """One merchant coupon. Names and texts come in Chinese (``zh``) and English (``en``)."""

    id: str
    name: dict[str, str]
    merchant: dict[str, str]
    district: dict[str, str]
    discount: dict[str, str]
    valid_until: date
    total_stock: int
    code_prefix: str
    keywords: tuple[str, ...] = ()
    price: int | None = None  # fen; None for a free coupon

    def __post_init__(self) -> None:
        if self.price is not None and (type(self.price) is not int or self.price <= 0):
            raise ValueError(f"coupon {self.id}: price must be a positive whole number of fen, got {self.price!r}")

    def is_valid_on(self, day: date) -> bool:
        """Return whether the coupon can still be claimed on ``day``."""
        return day <= self.valid_until

    def search_terms(self) -> tuple[str, ...]:
        """Return every lower-case term a customer might search this coupon by."""
        texts = (*self.name.values(), *self.merchant.values(), *self.district.values(), *self.keywords)
        return tuple(text.lower() for text in texts)

    def to_dict(self, lang: str) -> dict[str, Any]:
        """Return the coupon as plain data in one language, for a template or the API."""
        return {
            "id": self.id,
            "name": self.name[lang],
            "merchant": self.merchant[lang],
            "district": self.district[lang],
            "discount": self.discount[lang],
            "valid_until": self.valid_until.isoformat(),
            "total_stock": self.total_stock,
            "price": self.price,
            "price_display": format_price(self.price) if self.price is not None else None,
        }


COUPONS: tuple[Coupon, ...] = (
    Coupon(
        id="wukang-coffee",
        name={"zh": "梧桐咖啡满 50 减 15", "en": "¥15 off ¥50 at Plane Tree Coffee"},
        merchant={"zh": "梧桐咖啡（武康路店）", "en": "Plane Tree Coffee, Wukang Road"},
        district={"zh": "徐汇区", "en": "Xuhui"},
        discount={"zh": "满 50 元减 15 元", "en": "¥15 off when you spend ¥50"},
        valid_until=date(2027, 1, 31),
        total_stock=200,
        code_prefix="PTC",
        keywords=("咖啡", "coffee", "cafe", "武康路", "wukang"),
    ),
    Coupon(
        id="old-town-xiaolongbao",
        name={"zh": "老城厢小笼满 100 减 20", "en": "¥20 off ¥100 at Old Town Dumplings"},
        merchant={"zh": "老城厢小笼馆（豫园店）", "en": "Old Town Dumpling House, Yuyuan"},
        district={"zh": "黄浦区", "en": "Huangpu"},
        discount={"zh": "满 100 元减 20 元", "en": "¥20 off when you spend ¥100"},
        valid_until=date(2026, 12, 31),
        total_stock=150,
        code_prefix="OTD",
        keywords=("小笼包", "小笼", "餐厅", "美食", "dumplings", "xiaolongbao", "restaurant", "food", "豫园", "yuyuan"),
    ),
    Coupon(
        id="lane-bookshop",
        name={"zh": "弄堂书店全场 8 折", "en": "20% off at Lane Bookshop"},
        merchant={"zh": "弄堂书店（田子坊）", "en": "Lane Bookshop, Tianzifang"},
        district={"zh": "黄浦区", "en": "Huangpu"},
        discount={"zh": "图书文创 8 折，最高减 50 元", "en": "20% off books and gifts, up to ¥50"},
        valid_until=date(2027, 2, 28),
        total_stock=80,
        code_prefix="LBS",
        keywords=("书店", "图书", "books", "bookshop", "bookstore", "田子坊", "tianzifang"),
    ),
    Coupon(
        id="jingan-bakery",
        name={"zh": "静安面包房买二送一", "en": "Buy 2 get 1 free at Jing'an Bakery"},
        merchant={"zh": "静安面包房（南京西路店）", "en": "Jing'an Bakery, West Nanjing Road"},
        district={"zh": "静安区", "en": "Jing'an"},
        discount={"zh": "面包买二送一", "en": "Buy two loaves, get one free"},
        valid_until=date(2026, 12, 15),
        total_stock=120,
        code_prefix="JAB",
        keywords=("面包", "烘焙", "bakery", "bread", "南京西路", "nanjing road"),
    ),
    Coupon(
        id="riverside-cinema",
        name={"zh": "滨江影城观影立减 10 元", "en": "¥10 off a ticket at Riverside Cinema"},
        merchant={"zh": "滨江影城（陆家嘴店）", "en": "Riverside Cinema, Lujiazui"},
        district={"zh": "浦东新区", "en": "Pudong"},
        discount={"zh": "每张电影票立减 10 元", "en": "¥10 off each film ticket"},
        valid_until=date(2027, 3, 31),
        total_stock=300,
        code_prefix="RSC",
        keywords=("电影", "影院", "cinema", "movie", "film", "陆家嘴", "lujiazui"),
    ),
    Coupon(
        id="neighbourhood-market",
        name={"zh": "邻里菜场满 80 减 10", "en": "¥10 off ¥80 at Neighbourhood Market"},
        merchant={"zh": "邻里生鲜菜场（长宁店）", "en": "Neighbourhood Fresh Market, Changning"},
        district={"zh": "长宁区", "en": "Changning"},
        discount={"zh": "满 80 元减 10 元", "en": "¥10 off when you spend ¥80"},
        valid_until=date(2027, 1, 15),
        total_stock=500,
        code_prefix="NFM",
        keywords=("菜场", "买菜", "生鲜", "超市", "market", "groceries", "fresh", "supermarket"),
    ),
    Coupon(
        id="bund-night-cruise",
        name={"zh": "浦江夜游船票 88 元抵 120 元", "en": "¥120 Bund night cruise ticket for ¥88"},
        merchant={"zh": "浦江游览（十六铺码头）", "en": "Huangpu River Cruises, Shiliupu Pier"},
        district={"zh": "黄浦区", "en": "Huangpu"},
        discount={"zh": "支付 88 元，抵 120 元夜游船票", "en": "Pay ¥88 for a ¥120 night cruise ticket"},
        valid_until=date(2027, 4, 30),
        total_stock=60,
        code_prefix="BNC",
        keywords=("游船", "夜游", "外滩", "浦江", "cruise", "boat", "bund", "river"),
        price=8800,
    ),
)

COUPONS_BY_ID: dict[str, Coupon] = {coupon.id: coupon for coupon in COUPONS}


def find(coupon_id: Any) -> Coupon | None:
    """Return the coupon with ``coupon_id``, or None for anything else (including non-strings)."""
    return COUPONS_BY_ID.get(coupon_id) if isinstance(coupon_id, str) else None


def format_price(fen: int) -> str:
    """Return a price in fen for people, e.g. ``¥88.00``."""
    yuan, cents = divmod(fen, 100)
    return f"¥{yuan:,}.{cents:02d}"


def shanghai_today() -> date:
    """Return today's date in Shanghai."""
    return datetime.now(CHINA_TIME).date()
