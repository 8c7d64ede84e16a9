"""The HTTP baseline: a bare Flask app served by gunicorn exactly as Canopy is.

``/healthz`` answers like Canopy's; ``/tiles`` renders a small Jinja page of two
zones with four tiles from a Python list (the shape and size of Canopy's demo storefront
``/s/SH001``, without the database, the plugin calls or the host's template helpers);
``/profile`` returns a small JSON profile shaped like Canopy's ``GET /api/v1/me`` and
``POST /token`` reads a form and returns a token-shaped JSON answer like ``/oauth/token``'s
— both without checking anything.

    gunicorn -c host/gunicorn_conf.py benchmarks.bare_app:app
"""

from __future__ import annotations

import secrets

from flask import Flask, jsonify, render_template, request

app = Flask(__name__)
app.json.ensure_ascii = False  # as Canopy answers

ZONES = [
    {
        "plugin_id": "wealth.checkup",
        "name": "财富体检",
        "start": "/mp/wealth.checkup/?branch=SH001",
        "tiles": [{"title": "2 分钟财富体检", "subtitle": "回答 6 个问题，看看适合您的资产配置", "badge": None, "href": "/mp/wealth.checkup/?branch=SH001"}],
    },
    {
        "plugin_id": "sh.deals",
        "name": "上海商圈优惠",
        "start": "/mp/sh.deals/?branch=SH001",
        "tiles": [
            {"title": "静安面包房买二送一", "subtitle": "静安面包房（南京西路店） · 有效期至 2026-12-15", "badge": "仅剩 120", "href": "/mp/sh.deals/deal?id=jingan-bakery&branch=SH001"},
            {"title": "老城厢小笼满 100 减 20", "subtitle": "老城厢小笼馆（豫园店） · 有效期至 2026-12-31", "badge": "仅剩 150", "href": "/mp/sh.deals/deal?id=old-town-xiaolongbao&branch=SH001"},
            {"title": "邻里菜场满 80 减 10", "subtitle": "邻里生鲜菜场（长宁店） · 有效期至 2027-01-15", "badge": "仅剩 500", "href": "/mp/sh.deals/deal?id=neighbourhood-market&branch=SH001"},
        ],
    },
]


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.get("/tiles")
def tiles():
    return render_template("bare_tiles.html", branch_name="上海分行", zones=ZONES)


PROFILE = {"sub": "3HX8QKZP1M4R7T2V9W5Y6B0CDE", "nickname": "林小姐", "avatar": None, "locale": "zh-CN", "phone": "13800000001"}


@app.get("/profile")
def profile():
    response = jsonify(PROFILE)
    response.headers["Cache-Control"] = "no-store"
    return response


@app.post("/token")
def token():
    scope = request.form.get("scope", "")
    response = jsonify(token_type="DPoP", access_token=secrets.token_urlsafe(32), expires_in=300, scope=scope)
    response.headers["Cache-Control"] = "no-store"
    return response
