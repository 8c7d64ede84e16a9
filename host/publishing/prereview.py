"""The automated pre-review of a submitted version: the report a reviewer reads before anyone
looks at the code, and the one place that decides whether a version reaches the review queue.

:func:`run` checks a version's stored files and returns its report (plain JSON, stored with the
version). Its sections (docs/publishing.md, "The automated pre-review"):

* ``integrity`` — the stored files are exactly the uploaded ones; the version is newer than every
  approved version of the plugin;
* ``manifest`` — lint beyond validation: descriptions, keywords and titles in both languages,
  the entry module and every template the code or the templates refer to;
* ``scopes`` — the scopes added and removed since the last approved version (or else the latest
  registered one), each added scope with its sensitivity from the catalog; ``high`` ones flagged;
* ``budgets`` — total size, file count, largest file and page count against :class:`Budgets`;
* ``smoke`` — every package's hooks run in a throw-away sandbox worker (whatever the publisher:
  unreviewed code never runs in the host process): ``canopy_storefront_tiles`` and
  ``canopy_page`` for every manifest page, with an anonymous dry-run ``ctx``, each within its
  normal hook budget; where the sandbox cannot isolate here it is not run, and the version does
  not pass;
* ``tests`` — the plugin's own tests (``tests/``), run by pytest in a sandbox jail
  (:mod:`sandbox.plugin_tests`) whatever the publisher, within ``tests_timeout`` seconds; a
  failing or unfinished run fails the version, none collected is a warning; without tests, or
  where the sandbox cannot isolate here, not run (the reason is in the report).

Each section has an ``outcome`` (``pass``, ``warn``, ``fail`` or ``not_run``) and ``findings``
(``failure`` or ``warning``, each with a code and a message a publisher can act on). A version
passes when no section has a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from canopy_sdk.errors import NoCustomer, PaymentError, ScopeDenied, StorageError
from sandbox import client, jail, plugin_tests, wire
from sandbox.supervisor import START_TIMEOUT, FaultPolicy, PluginSupervisor, SandboxUnavailable
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..runtime.loader import FolderProblem, plugin_files, tree_checksum
from ..runtime.models import PluginVersion
from ..runtime.sandboxed import KILL_GRACE, answer_ctx
from .lifecycle import Status
from .models import PackageVersion

#: The report's format; a reader that finds another one shows it as it is.
REPORT_FORMAT = 1
#: Outcomes of a section, and levels of a finding.
PASS, WARN, FAIL, NOT_RUN = "pass", "warn", "fail", "not_run"
FAILURE, WARNING = "failure", "warning"
#: Results of one smoke call.
OK, ERROR, TIMEOUT, INVALID, NOT_IMPLEMENTED, SKIPPED = "ok", "error", "timeout", "invalid", "not_implemented", "skipped"
#: Statuses of versions that passed review.
APPROVED_OR_LATER = (Status.APPROVED, Status.GRAY, Status.RELEASED, Status.ROLLED_BACK, Status.SUSPENDED,
                     Status.RETIRED)
#: The scope sensitivity the report flags for the reviewer.
FLAGGED_SENSITIVITY = "high"
#: The longest message kept in a report (plugin text included), and findings kept per section.
MAX_MESSAGE = 300
MAX_FINDINGS = 50
#: The longest summary stored as a rejection's reason (the lifecycle's limit is 1000).
MAX_SUMMARY = 1000
#: The most of a test run's output the report keeps (its end, where pytest sums up).
MAX_TEST_OUTPUT = 4000
#: The dry run's customer-free branch when the publisher is not a branch.
DRY_RUN_BRANCH_NAME = "Pre-review"

_SEMVER_CORE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?")
_TEMPLATE_IN_CODE = re.compile(r"""\btemplate\s*=\s*(["'])([^"'\n]{1,200})\1""")
_TEMPLATE_IN_TEMPLATE = re.compile(r"""\{%-?\s*(?:extends|include|import|from)\s+(["'])([^"'\n]{1,200})\1""")
_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
TEMPLATE_FOLDER = "templates"
TESTS_FOLDER = "tests"


@dataclass(frozen=True)
class Budgets:
    """What a mini-program may weigh to reach a reviewer (docs/publishing.md): far below what a
    package may hold, so that a reviewer can read it and a phone can load it."""

    total_bytes: int = 5 * 1024 * 1024  #: all files, decompressed
    files: int = 200  #: number of files
    largest_file_bytes: int = 1024 * 1024  #: one file
    pages: int = 20  #: pages the manifest lists (each is smoke-rendered)


def version_key(version: str) -> tuple:
    """A sort key of a semantic version (pre-releases before their release)."""
    found = _SEMVER_CORE.match(version)
    if found is None:
        return (0, 0, 0, 0, version)
    major, minor, patch, pre = found.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def clean_text(value: object, limit: int = MAX_MESSAGE, *, lines: bool = False) -> str:
    """``value`` as one line (``lines``: keeping its line breaks) of at most ``limit`` characters
    without control characters (safe to store as a reason and to show; plugin messages pass
    through here)."""
    kept = "\n" if lines else ""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") and ch not in kept else ch
                   for ch in str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- sections ------------------------------------------------------------------------------------


class _Section:
    """A section of the report being written: its findings and its own fields."""

    def __init__(self, **fields: Any) -> None:
        self.findings: list[dict[str, str]] = []
        self.dropped = 0
        self.fields = fields
        self.not_run: str | None = None

    def add(self, level: str, code: str, message: str) -> None:
        if len(self.findings) >= MAX_FINDINGS:
            self.dropped += 1
            return
        self.findings.append({"level": level, "code": code, "message": clean_text(message)})

    def fail(self, code: str, message: str) -> None:
        self.add(FAILURE, code, message)

    def warn(self, code: str, message: str) -> None:
        self.add(WARNING, code, message)

    def done(self) -> dict[str, Any]:
        levels = {finding["level"] for finding in self.findings}
        outcome = NOT_RUN if self.not_run is not None else FAIL if FAILURE in levels else WARN if levels else PASS
        body = {"outcome": outcome, **self.fields, "findings": self.findings}
        if self.not_run is not None:
            body["reason"] = self.not_run
        if self.dropped:
            body["findings_left_out"] = self.dropped
        return body


# -- the stored files ----------------------------------------------------------------------------


class _Snapshot:
    """A private copy of a stored version's folder, read once: its files (path → bytes) and the
    checksum of exactly those bytes. The smoke render runs from this copy, so the files checked
    are the files run, and the store is never touched."""

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.problem: str | None = None
        self.folder: Path | None = None
        self.checksum: str | None = None
        self._temp: Path | None = None
        if not folder.is_dir():
            self.problem = "the stored files are missing"
            return
        self._temp = Path(tempfile.mkdtemp(prefix="canopy-prereview-"))
        os.chmod(self._temp, 0o755)
        target = self._temp / "plugin"
        try:
            for relative, source in plugin_files(folder):
                self.files[relative] = content = source.read_bytes()
                path = target.joinpath(*relative.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                with open(path, "xb") as handle:
                    handle.write(content)
                os.chmod(path, 0o444)
        except (OSError, FolderProblem) as exc:
            self.problem = f"the stored files cannot be read: {exc}"
            return
        for directory in [target, *(p for p in target.rglob("*") if p.is_dir())]:
            os.chmod(directory, 0o755)  # the worker may run under the plugin's own user id
        self.folder = target
        self.checksum = tree_checksum((path, hashlib.sha256(content).digest()) for path, content in self.files.items())

    def remove(self) -> None:
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)


# -- integrity -----------------------------------------------------------------------------------


def _integrity(session: Session, row: PackageVersion, snapshot: _Snapshot) -> dict[str, Any]:
    section = _Section()
    if snapshot.problem is not None:
        section.fail("files_missing", f"{snapshot.problem}; the version cannot be reviewed")
    elif snapshot.checksum != row.checksum:
        section.fail("files_changed", "the stored files differ from the upload; the version cannot be reviewed")
    newest = max((v.version for v in session.scalars(select(PackageVersion).where(
        PackageVersion.plugin_id == row.plugin_id, PackageVersion.pk != row.pk,
        PackageVersion.status.in_(APPROVED_OR_LATER)))), key=version_key, default=None)
    if newest is not None and version_key(row.version) <= version_key(newest):
        section.fail("not_newer", f"version {row.version} is not newer than {newest}, approved already")
    return section.done()


# -- manifest lint -------------------------------------------------------------------------------


def lint_manifest(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """Lint a validated manifest (its raw form) against the package's files: the ``manifest``
    section of the report."""
    section = _Section()
    description = manifest.get("description") or {}
    for language in ("zh", "en"):
        if not str(description.get(language, "")).strip():
            section.warn("description_missing", f"no description in {language}: the storefront and the search "
                                                f"centre show none (add description = {{ zh = …, en = … }})")
    keywords = [str(k) for k in manifest.get("keywords", [])]
    if not keywords:
        section.warn("keywords_missing", "no keywords: customers find it by its name only (add keywords in "
                                         "Chinese and English)")
    else:
        if not any(_HAN.search(k) for k in keywords):
            section.warn("keywords_zh_missing", "no Chinese keywords: customers searching in Chinese will not find it")
        if not any(_LATIN.search(k) for k in keywords):
            section.warn("keywords_en_missing", "no English keywords: customers searching in English will not find it")
    name = manifest.get("name") or {}
    if name.get("zh") and name.get("zh") == name.get("en") and not _HAN.search(name["zh"]):
        section.warn("name_untranslated", f"the name {name['zh']!r} is the same in zh and en: give its Chinese name")
    for page in manifest.get("pages", []):
        title = page.get("title") or {}
        for language in ("zh", "en"):
            if not str(title.get(language, "")).strip():
                section.fail("page_title_missing", f"page {page.get('path')!r} has no title in {language}")
        if title.get("zh") and title.get("zh") == title.get("en") and not _HAN.search(title["zh"]):
            section.warn("page_title_untranslated", f"page {page.get('path')!r} has the same title in zh and en "
                                                    f"({title['zh']!r}): give its Chinese title")
    _lint_entry(section, str(manifest.get("entry", "")), files)
    _lint_templates(section, files)
    return section.done()


def _lint_entry(section: _Section, entry: str, files: Mapping[str, bytes]) -> None:
    module, _, attribute = entry.partition(":")
    base = module.replace(".", "/")
    source = files.get(f"{base}.py", files.get(f"{base}/__init__.py"))
    if source is None:
        section.fail("entry_missing", f"entry {entry!r} names module {module!r}, which the package does not hold")
        return
    if attribute:
        name = re.escape(attribute)
        defined = re.compile(rf"^(?:{name}\s*[:=]|(?:async\s+)?def\s+{name}\b|class\s+{name}\b|.*\bimport\b.*\b{name}\b)",
                             re.MULTILINE)
        if not defined.search(source.decode("utf-8", "replace")):
            section.warn("entry_attribute_not_found", f"{base}.py does not visibly define {attribute!r} (entry "
                                                      f"{entry!r}); the smoke render shows whether it loads")


def _lint_templates(section: _Section, files: Mapping[str, bytes]) -> None:
    """Every template the code or another template names must be in ``templates/``."""
    held = {path[len(TEMPLATE_FOLDER) + 1:] for path in files if path.startswith(f"{TEMPLATE_FOLDER}/")}
    for path, content in sorted(files.items()):
        suffix = PurePosixPath(path).suffix
        if suffix == ".py" and not path.startswith(f"{TESTS_FOLDER}/"):
            pattern = _TEMPLATE_IN_CODE
        elif suffix in (".html", ".jinja") and path.startswith(f"{TEMPLATE_FOLDER}/"):
            pattern = _TEMPLATE_IN_TEMPLATE
        else:
            continue
        for found in sorted({m.group(2) for m in pattern.finditer(content.decode("utf-8", "replace"))}):
            if found not in held:
                section.fail("template_missing", f"{path} refers to template {found!r}, which {TEMPLATE_FOLDER}/ "
                                                 f"does not hold")


# -- scopes --------------------------------------------------------------------------------------


def diff_scopes(session: Session, row: PackageVersion, catalog) -> dict[str, Any]:
    """The ``scopes`` section: scopes added and removed since the last approved version of the
    plugin (else its latest registered one), each added scope with its sensitivity."""
    current = list(dict.fromkeys(row.manifest.get("scopes", [])))
    approved = [v for v in session.scalars(select(PackageVersion).where(
        PackageVersion.plugin_id == row.plugin_id, PackageVersion.pk != row.pk,
        PackageVersion.status.in_(APPROVED_OR_LATER)))]
    basis, previous = "none", None
    if approved:
        newest = max(approved, key=lambda v: version_key(v.version))
        basis, previous = "approved", (newest.version, list(newest.manifest.get("scopes", [])))
    else:
        registered = [v for v in session.scalars(select(PluginVersion).where(
            PluginVersion.plugin_id == row.plugin_id, PluginVersion.version != row.version))]
        if registered:
            newest_registered = max(registered, key=lambda v: version_key(v.version))
            basis = "registered"
            previous = (newest_registered.version, list(newest_registered.manifest.get("scopes", [])))
    before = previous[1] if previous else []
    section = _Section(compared_with=previous[0] if previous else None, basis=basis)
    added = []
    for scope in current:
        if scope in before:
            continue
        if scope not in catalog:
            added.append({"scope": scope, "sensitivity": None, "needs_consent": None, "flagged": True})
            section.fail("scope_unknown", f"scope {scope!r} is not in the scope catalog")
            continue
        definition = catalog[scope]
        flagged = definition.sensitivity == FLAGGED_SENSITIVITY
        added.append({"scope": scope, "sensitivity": definition.sensitivity,
                      "needs_consent": definition.needs_consent, "flagged": flagged})
        if flagged:
            section.warn("scope_sensitive", f"adds {scope!r}, of {definition.sensitivity} sensitivity: "
                                            f"{definition.describe('en')}")
    for scope in current:
        if scope in before and scope not in catalog:
            section.fail("scope_unknown", f"scope {scope!r} is not in the scope catalog")
    section.fields.update(added=added, removed=[s for s in before if s not in current],
                          unchanged=[s for s in current if s in before])
    return section.done()


# -- budgets -------------------------------------------------------------------------------------


def check_budgets(manifest: Mapping[str, Any], files: Mapping[str, bytes], budgets: Budgets) -> dict[str, Any]:
    """The ``budgets`` section: each measure with its limit; one over its budget is a failure."""
    largest = max(files.items(), key=lambda item: (len(item[1]), item[0]), default=("", b""))
    measures = [
        ("total_bytes", sum(len(content) for content in files.values()), budgets.total_bytes, None),
        ("files", len(files), budgets.files, None),
        ("largest_file_bytes", len(largest[1]), budgets.largest_file_bytes, largest[0] or None),
        ("pages", len(manifest.get("pages", [])), budgets.pages, None),
    ]
    section = _Section(measures=[])
    for name, value, limit, path in measures:
        section.fields["measures"].append({"name": name, "value": value, "limit": limit, "ok": value <= limit,
                                           **({"path": path} if path else {})})
        if value > limit:
            what = f" ({path})" if path else ""
            section.fail(f"over_budget_{name}", f"{name.replace('_', ' ')}{what}: {value:,}, over the budget of "
                                                f"{limit:,}")
    return section.done()


# -- smoke render --------------------------------------------------------------------------------


class _DryStorage:
    """``ctx.storage`` in the dry run: empty, and refusing to write."""

    def get_item(self, key: str) -> None:
        return None

    def list(self, prefix: str, limit: int | None = None) -> list:
        return []

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise StorageError("ctx.storage does not write during the pre-review's dry run")

    set = compare_and_set = delete = _refuse


class _DryPayments:
    """``ctx.payments`` in the dry run: refuses everything."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise PaymentError("ctx.payments is not available during the pre-review's dry run")

    create_intent = get = refund = _refuse


class DryRunContext:
    """The ``ctx`` the host answers a pre-review worker's ctx calls on: an anonymous customer,
    the scopes the manifest requests, empty storage that refuses writes, no payments. Its calls
    are checked and dispatched by the same function as a live plugin's
    (:func:`host.runtime.sandboxed.answer_ctx`)."""

    customer = None

    def __init__(self, plugin_id: str, scopes: Iterable[str]) -> None:
        self.plugin_id = plugin_id
        self.scopes = frozenset(scopes)
        self.storage = _DryStorage()
        self.payments = _DryPayments()

    @property
    def customer_storage(self) -> Any:
        """Nothing: the dry run has no customer."""
        raise NoCustomer("customer storage")

    def require(self, scope: str) -> None:
        """Allow the scopes the manifest requests."""
        if scope not in self.scopes:
            raise ScopeDenied(scope, "the manifest does not request it", self.plugin_id)


def _not_run_smoke(reason: str) -> dict[str, Any]:
    section = _Section(hooks=[], calls=[])
    section.not_run = clean_text(reason)
    section.fail("smoke_not_run", f"the smoke render was not run: {reason}; a version passes only after it ran")
    return section.done()


def smoke_render(plugin_id: str, folder: Path, manifest: Mapping[str, Any], *, hook_budget: Callable[[str], float],
                 probe: Callable[[], jail.Probe] = jail.probe, branch: Mapping[str, Any], locale: str,
                 max_pages: int) -> dict[str, Any]:
    """The ``smoke`` section: the plugin in ``folder`` run in a throw-away sandbox worker, its
    tiles and each manifest page (up to ``max_pages``) called once with a :class:`DryRunContext`,
    each within ``hook_budget(hook)`` seconds. Every call's result is ``ok``, ``error``,
    ``timeout``, ``invalid``, ``not_implemented`` or ``skipped``, with a short message."""
    found = probe()
    if not found.ok or found.unsafe:
        return _not_run_smoke(f"the sandbox cannot isolate plugins on this host ({found.reason})")
    scopes = list(manifest.get("scopes", []))
    facts = {"plugin_id": plugin_id, "branch": dict(branch), "locale": locale, "scopes": sorted(set(scopes)),
             "customer": None}
    answer = partial(answer_ctx, DryRunContext(plugin_id, scopes))
    pages = list(manifest.get("pages", []))
    # One worker at a time; every call may fault (and is replaced, at once, outside the next budget).
    supervisor = PluginSupervisor(jail.JailSpec(plugin_id, folder), probe=lambda: found, pool_size=1,
                                  policy=FaultPolicy(max_faults=len(pages) + 10, backoff=0.0))
    section = _Section(hooks=[], calls=[], locale=locale)
    calls = section.fields["calls"]
    try:
        try:
            worker = supervisor.acquire(time.monotonic() + START_TIMEOUT)
        except SandboxUnavailable as exc:
            section.fail("load_failed", f"the plugin could not be loaded in the sandbox: {exc}")
            return section.done()
        hooks = sorted(worker.hooks)
        supervisor.release(worker)
        section.fields["hooks"] = hooks
        if "canopy_storefront_tiles" in hooks:
            result, message = _call(supervisor, "canopy_storefront_tiles", facts, {}, hook_budget, answer)
            calls.append({"hook": "canopy_storefront_tiles", "path": None, "result": result, "message": message})
            if result != OK:
                section.fail(f"tiles_{result}", f"canopy_storefront_tiles: {result}: {message}")
            elif not (manifest.get("zone") or {}).get("slots"):
                section.warn("tiles_without_zone", "canopy_storefront_tiles is implemented but the manifest has no "
                                                   "zone: its tiles are never shown")
        else:
            calls.append({"hook": "canopy_storefront_tiles", "path": None, "result": NOT_IMPLEMENTED,
                          "message": "the plugin does not implement it"})
            if (manifest.get("zone") or {}).get("slots"):
                section.fail("tiles_not_implemented", "the manifest names zone slots but the plugin does not "
                                                      "implement canopy_storefront_tiles")
        for number, page in enumerate(pages):
            path = str(page.get("path"))
            if "canopy_page" not in hooks:
                result, message = NOT_IMPLEMENTED, "the plugin does not implement canopy_page"
            elif number >= max_pages:
                result, message = SKIPPED, f"past the page budget of {max_pages}"
            else:
                result, message = _call(supervisor, "canopy_page", facts, {"path": path, "query": {}}, hook_budget,
                                        answer)
            calls.append({"hook": "canopy_page", "path": path, "result": result, "message": message})
            if result not in (OK, SKIPPED):
                section.fail(f"page_{result}", f"page {path!r}: {result}: {message}")
    finally:
        supervisor.shutdown()
    return section.done()


def _call(supervisor: PluginSupervisor, hook: str, facts: Mapping[str, Any], args: Mapping[str, Any],
          hook_budget: Callable[[str], float], answer: client.CtxAnswer) -> tuple[str, str]:
    """(result, message) of one smoke call."""
    budget = hook_budget(hook)
    try:
        # A worker killed by the previous call is replaced here, not inside this call's budget.
        supervisor.release(supervisor.acquire(time.monotonic() + START_TIMEOUT))
    except SandboxUnavailable as exc:
        return ERROR, clean_text(f"no worker to call: {exc}")
    try:
        value = client.call_hook(supervisor, hook, facts, args, deadline=time.monotonic() + budget + KILL_GRACE,
                                 answer=answer)
    except client.HookRaised as exc:
        kind = str(exc.error.get("type", "error"))
        text = str(exc.error.get("message", ""))
        if kind == "InvalidResult":
            return INVALID, clean_text(text)
        return ERROR, clean_text(text if kind in ("error", "host") else f"{kind}: {text}")
    except client.CallTimeout:
        return TIMEOUT, f"no answer within its budget of {budget * 1000:.0f} ms; the worker was killed"
    except (client.WorkerFault, SandboxUnavailable) as exc:
        return ERROR, clean_text(str(exc))
    try:
        result = wire.result_from_wire(hook, value)
    except Exception as exc:  # the worker's JSON did not make SDK values: invalid, whatever the reason
        return INVALID, clean_text(f"{type(exc).__name__}: {exc}")
    if hook == "canopy_storefront_tiles":
        return OK, f"{len(result)} tile(s)"
    if result is None:
        return ERROR, "no page for this path (customers would get 404)"
    if result.html is None:
        return INVALID, "the page arrived as a template, not rendered"
    if result.status == 404:
        return ERROR, "the page answered 404, though the manifest lists it"
    return OK, f"status {result.status}, {len(result.html):,} characters of HTML"


# -- the plugin's own tests ----------------------------------------------------------------------


def own_tests(plugin_id: str, folder: Path | None, files: Mapping[str, bytes], *, probe: Callable[[], jail.Probe],
              timeout: float) -> dict[str, Any]:
    """The ``tests`` section: the package's own ``tests/`` run by pytest in a sandbox jail."""
    has_tests = any(path.startswith(f"{TESTS_FOLDER}/") and path.endswith(".py") for path in files)
    section = _Section(found=has_tests)
    if not has_tests:
        section.not_run = "the package has no tests/ folder"
        return section.done()
    found = probe()
    if folder is None or not found.ok or found.unsafe:
        section.not_run = ("the stored files are missing" if folder is None else
                           f"the sandbox cannot isolate the tests here ({found.reason}); unreviewed code never runs "
                           f"outside it")
        return section.done()
    started = time.monotonic()
    result = plugin_tests.run(jail.JailSpec(plugin_id, folder, plugin_tests.TEST_LIMITS), timeout=timeout, probe=found)
    section.fields.update(counts=result.counts, seconds=round(time.monotonic() - started, 2),
                          output=clean_text(result.output[-MAX_TEST_OUTPUT:], MAX_TEST_OUTPUT, lines=True))
    told = ", ".join(f"{n} {kind}" for kind, n in result.counts.items()) or "no summary"
    if result.timed_out:
        section.fail("tests_timeout", f"the package's tests did not finish within {timeout:.0f} s ({told} so far)")
    elif result.exit_code == 5:
        section.warn("tests_none", "tests/ holds no test pytest collects")
    elif not result.passed:
        section.fail("tests_failed", f"the package's own tests failed ({told}; pytest exit code {result.exit_code})")
    return section.done()


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How the pre-review runs: the hook budgets (seconds per call, as the runtime's invoker
    gives them), the size and page budgets, the sandbox's probe, the dry run's locale and the
    head office's branch code (the dry run's branch for bank and partner plugins)."""

    hook_budget: Callable[[str], float]
    budgets: Budgets = Budgets()
    probe: Callable[[], jail.Probe] = jail.probe
    locale: str = "zh-CN"
    head_office: str = "HQ"
    tests_timeout: float = 120.0  #: seconds the package's own tests may run


def run(session: Session, row: PackageVersion, *, catalog, root: Path, settings: Settings) -> dict[str, Any]:
    """Pre-review ``row`` (a submitted version stored under ``root``) and return its report.

    ``report["passed"]`` decides: the version goes to review, or is rejected with
    ``report["problems"]`` as the reason (see :func:`summary`). Nothing is written here.
    """
    snapshot = _Snapshot(root / row.plugin_id / row.version)
    try:
        manifest = row.manifest
        sections = {"integrity": _integrity(session, row, snapshot)}
        sections["manifest"] = lint_manifest(manifest, snapshot.files)
        sections["scopes"] = diff_scopes(session, row, catalog)
        sections["budgets"] = check_budgets(manifest, snapshot.files, settings.budgets)
        if snapshot.folder is None or snapshot.checksum != row.checksum:
            sections["smoke"] = _not_run_smoke("the stored files are missing or differ from the upload")
        else:
            branch_code = row.publisher_id if row.publisher_kind == "branch" else settings.head_office
            sections["smoke"] = smoke_render(
                row.plugin_id, snapshot.folder, manifest, hook_budget=settings.hook_budget, probe=settings.probe,
                branch={"code": branch_code, "name": DRY_RUN_BRANCH_NAME, "parent": None}, locale=settings.locale,
                max_pages=settings.budgets.pages)
        sections["tests"] = own_tests(row.plugin_id, snapshot.folder if snapshot.checksum == row.checksum else None,
                                      snapshot.files, probe=settings.probe, timeout=settings.tests_timeout)
    finally:
        snapshot.remove()
    problems = [f"{name}: {f['message']}" for name, body in sections.items() for f in body["findings"]
                if f["level"] == FAILURE]
    warnings = [f"{name}: {f['message']}" for name, body in sections.items() for f in body["findings"]
                if f["level"] == WARNING]
    return {"format": REPORT_FORMAT, "passed": not problems,
            "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "problems": problems, "warnings": warnings, **sections}


def summary(report: Mapping[str, Any]) -> str:
    """The report's problems as one reason of at most :data:`MAX_SUMMARY` characters."""
    text = "; ".join(report.get("problems", [])) or "the pre-review found no problems"
    return clean_text(text, MAX_SUMMARY)
