"""The host's own scopes, registered as a default plugin on the app's plugin manager."""

from __future__ import annotations

from canopy_sdk.markers import hookimpl

SCOPES = [
    {
        "name": "profile.basic:read",
        "description": {"zh": "读取您的昵称、头像和语言偏好", "en": "See your nickname, avatar and preferred language"},
        "sensitivity": "medium",
        "needs_consent": True,
    },
    {
        "name": "profile.phone:read",
        "description": {"zh": "读取您的手机号码", "en": "See your mobile phone number"},
        "sensitivity": "high",
        "needs_consent": True,
    },
    {
        "name": "payments:create",
        "description": {
            "zh": "发起付款请求（每笔付款都由您在银行页面确认）",
            "en": "Ask you to pay (you confirm every payment on the bank's own screen)",
        },
        "sensitivity": "medium",
        "needs_consent": False,
    },
    {
        "name": "payments:read",
        "description": {"zh": "查看它发起的付款的状态", "en": "See the status of payments it asked for"},
        "sensitivity": "low",
        "needs_consent": False,
    },
    {
        "name": "refunds:create",
        "description": {"zh": "退还您在它这里的付款", "en": "Refund payments you made to it"},
        "sensitivity": "low",
        "needs_consent": False,
    },
    {
        "name": "notifications:send",
        "description": {"zh": "给您发送消息通知", "en": "Send you notifications"},
        "sensitivity": "low",
        "needs_consent": True,
    },
    {
        # Not a customer's data: a partner's back end uploads and submits versions of its own
        # organisation's mini-programs (docs/publishing.md). Client credentials only, once head
        # office approved it for the client's plugin.
        "name": "plugins:publish",
        "description": {
            "zh": "代表其所属机构上传小程序新版本并提交银行审核",
            "en": "Upload new versions of its organisation's mini-programs and submit them for the bank's review",
        },
        "sensitivity": "high",
        "needs_consent": False,
    },
]


@hookimpl
def canopy_scope_definitions() -> list[dict]:
    return SCOPES
