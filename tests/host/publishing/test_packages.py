"""Reading mini-program packages: what is accepted, and every way a hostile archive is refused."""

from __future__ import annotations

import io
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from host.publishing.packages import Limits, PackageRefused, read_package, store
from host.runtime.loader import folder_checksum

ROOT = Path(__file__).resolve().parents[3]
SH_DEALS = ROOT / "plugins" / "sh_deals"

MANIFEST = """\
id = "demo.shop"
name = { zh = "演示商店", en = "Demo shop" }
version = "1.0.0"
publisher = { kind = "branch", id = "SH001" }
entry = "demo_shop:plugin"
scopes = []
pages = [{ path = "/", title = { zh = "首页", en = "Home" } }]
"""
MODULE = b"from canopy_sdk import hookimpl\n\nplugin = object()\n"


def archive(files: dict[str, bytes | str], *, prefix: str = "", compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as out:
        for name, content in files.items():
            out.writestr(prefix + name, content)
    return buffer.getvalue()


def good(**extra: bytes | str) -> dict[str, bytes | str]:
    return {"plugin.toml": MANIFEST, "demo_shop.py": MODULE, "templates/index.html": "<h1>{{ title }}</h1>", **extra}


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    files = {str(path.relative_to(folder).as_posix()): path.read_bytes() for path in folder.rglob("*")
             if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts}
    return archive(files, prefix=prefix)


def test_a_plugin_folder_zipped_is_accepted_with_the_folders_own_checksum():
    package = read_package(zip_folder(SH_DEALS))
    assert package.manifest.id == "sh.deals"
    assert package.checksum == folder_checksum(SH_DEALS)  # what the registry records for the folder
    assert "plugin.toml" in package.files and package.size == sum(map(len, package.files.values()))


def test_a_package_inside_one_top_level_folder_is_accepted_the_same():
    assert read_package(zip_folder(SH_DEALS, prefix="sh_deals/")).checksum == folder_checksum(SH_DEALS)


@pytest.mark.parametrize("name", [
    "../evil.py", "templates/../../evil.py", "/etc/evil.py", "C:/evil.py", "templates\\evil.py",
    "./plugin2.toml", "templates//x.html", "a\x00b.py", "tab\there.py",
])
def test_paths_that_leave_the_folder_or_no_file_system_stores_alike_are_refused(name):
    with pytest.raises(PackageRefused):
        read_package(archive(good(**{name: "x = 1"})))


def test_names_that_differ_only_in_case_are_refused():
    with pytest.raises(PackageRefused, match="twice"):
        read_package(archive(good(**{"templates/Index.html": "<p>again</p>"})))


def test_a_symbolic_link_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, content in good().items():
            out.writestr(name, content)
        link = zipfile.ZipInfo("templates/secrets.html")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        out.writestr(link, "/etc/shadow")
    with pytest.raises(PackageRefused, match="links"):
        read_package(buffer.getvalue())


@pytest.mark.parametrize("name", ["tool.exe", "lib.so", "script.sh", "data.bin", "noext"])
def test_file_types_a_mini_program_has_no_use_for_are_refused(name):
    with pytest.raises(PackageRefused, match="type of file"):
        read_package(archive(good(**{name: "x"})))


def test_a_zip_bomb_is_refused_before_it_is_decompressed():
    bomb = archive(good(**{"static/bomb.css": b"\0" * (3 * 1024 * 1024)}))
    assert len(bomb) < 100_000
    with pytest.raises(PackageRefused, match="bytes|compressed"):
        read_package(bomb)


def test_a_high_compression_ratio_is_refused_even_under_the_size_limits():
    with pytest.raises(PackageRefused, match="compressed more than"):
        read_package(archive(good(**{"static/zeros.css": b" " * 500_000})))


def test_the_limits_on_the_archive_its_entries_and_their_total_hold():
    with pytest.raises(PackageRefused, match="archive is"):
        read_package(archive(good()), limits=Limits(archive_bytes=100))
    many = good(**{f"static/f{n}.txt": f"{n}" for n in range(20)})
    with pytest.raises(PackageRefused, match="entries"):
        read_package(archive(many), limits=Limits(members=10))
    stored = archive(good(**{f"static/f{n}.txt": "x" * 1000 for n in range(5)}), compression=zipfile.ZIP_STORED)
    with pytest.raises(PackageRefused, match="add up"):
        read_package(stored, limits=Limits(total_bytes=3000))
    with pytest.raises(PackageRefused, match="deep"):
        read_package(archive(good(**{"a/b/c/d/e/f/g/h/i.txt": "x"})))


def test_a_member_larger_than_its_header_says_is_refused():
    data = bytearray(archive(good(**{"static/site.css": "body { color: red }"}), compression=zipfile.ZIP_STORED))
    # Shrink the size the central directory announces: the reader must not trust it.
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("static/site.css").file_size == 19
    at = data.rfind(b"static/site.css") - 46  # the central directory's entry starts 46 bytes before its name
    assert data[at:at + 4] == b"PK\x01\x02"
    data[at + 24:at + 28] = (10).to_bytes(4, "little")  # uncompressed size: 10 instead of 19
    with pytest.raises(PackageRefused):
        read_package(bytes(data))


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + b"\xff" * 40, None, "text"])
def test_what_is_no_zip_archive_is_refused(data):
    with pytest.raises(PackageRefused):
        read_package(data)


def test_an_encrypted_member_is_refused():
    data = bytearray(archive(good(), compression=zipfile.ZIP_STORED))
    at = data.rfind(b"demo_shop.py") - 46
    assert data[at:at + 4] == b"PK\x01\x02"
    data[at + 8] |= 0x1  # the central directory's "encrypted" flag
    with pytest.raises(PackageRefused, match="encrypted"):
        read_package(bytes(data))


def test_the_manifest_must_be_there_valid_and_name_a_module_the_package_holds():
    with pytest.raises(PackageRefused, match="plugin.toml"):
        read_package(archive({"demo_shop.py": MODULE}))
    with pytest.raises(PackageRefused, match="version"):
        read_package(archive(good(**{"plugin.toml": MANIFEST.replace('"1.0.0"', '"one"')})))
    with pytest.raises(PackageRefused, match="entry"):
        read_package(archive({"plugin.toml": MANIFEST, "other.py": MODULE}))
    with pytest.raises(PackageRefused, match="UTF-8"):
        read_package(archive(good(**{"plugin.toml": b"\xff\xfe"})))


def test_compiled_caches_are_left_out_and_do_not_change_the_checksum():
    plain = read_package(archive(good()))
    cached = read_package(archive(good(**{"__pycache__/demo_shop.cpython-311.pyc.txt": "x"})))
    assert cached.checksum == plain.checksum and "__pycache__/demo_shop.cpython-311.pyc.txt" not in cached.files


def test_a_stored_version_never_changes(tmp_path):
    package = read_package(archive(good()))
    folder = store(package, tmp_path)
    assert folder == tmp_path / "demo.shop" / "1.0.0"
    assert folder_checksum(folder) == package.checksum
    assert store(package, tmp_path) == folder  # the same files again: the same version
    other = read_package(archive(good(**{"templates/index.html": "<h1>changed</h1>"})))
    with pytest.raises(PackageRefused, match="never changes"):
        store(other, tmp_path)
    assert folder_checksum(folder) == package.checksum
    assert [p.name for p in (tmp_path / "demo.shop").iterdir()] == ["1.0.0"]  # no staging folder left
    assert folder.stat().st_mode & 0o777 == 0o755  # others (the sandbox's users) may read, not write


def test_concurrent_stores_of_one_version_leave_one_whole_folder(tmp_path):
    packages = [read_package(archive(good())), read_package(archive(good(**{"templates/index.html": "<p>b</p>"})))]
    outcomes: list[str] = []
    start = threading.Barrier(len(packages) * 4)

    def upload(package):
        start.wait()
        try:
            store(package, tmp_path)
            outcomes.append(package.checksum)
        except PackageRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=upload, args=(p,)) for p in packages * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = folder_checksum(tmp_path / "demo.shop" / "1.0.0")
    assert kept in {p.checksum for p in packages}
    assert sorted(set(outcomes)) == sorted({kept, "refused"})  # the winner's uploads succeed, the other's are refused
    assert [p.name for p in (tmp_path / "demo.shop").iterdir()] == ["1.0.0"]
