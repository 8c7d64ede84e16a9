"""canopy_sdk.cli: ``canopy-sdk validate PATH``."""

from __future__ import annotations

import pytest

from canopy_sdk.cli import main


def test_validate_a_good_folder(tmp_path, make_plugin, capsys):
    folder = make_plugin(tmp_path)

    status = main(["validate", str(folder)])

    out, err = capsys.readouterr()
    assert status == 0
    assert out == "acme.bills 1.2.0: manifest OK\n"
    assert err == ""


def test_validate_a_bad_folder_lists_field_paths_on_stderr(tmp_path, make_plugin, valid_manifest, to_toml, capsys):
    data = valid_manifest(version="1.0", publisher={"kind": "vendor", "id": "acme"}, colour="green")
    data["pages"].append({"path": "/api", "title": {"zh": "接口", "en": "API"}})
    folder = make_plugin(tmp_path, to_toml(data))

    status = main(["validate", str(folder)])

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"{folder / 'plugin.toml'}: 4 problem(s)"
    assert {line.strip().split(":")[0] for line in lines[1:]} == {"colour", "pages[2].path", "publisher.kind", "version"}


def test_validate_reports_a_missing_entry_module(tmp_path, make_plugin, capsys):
    folder = make_plugin(tmp_path, files={})

    assert main(["validate", str(folder)]) == 1
    assert "  entry: module 'main' is not a regular file inside the plugin folder" in capsys.readouterr().err


def test_validate_a_folder_without_a_manifest(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 1
    assert "(manifest): is missing" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["validate"], ["lint", "."]])
def test_bad_usage_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    assert "usage: canopy-sdk" in capsys.readouterr().err
