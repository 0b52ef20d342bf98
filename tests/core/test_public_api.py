"""The public names of design.md resolve, and importing the package stays light."""

import subprocess
import sys

import pytest

import mtlspop_lab as lab


@pytest.mark.parametrize("name", lab.__all__)
def test_every_public_name_resolves(name):
    assert getattr(lab, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError) as info:
        lab.nope
    assert info.value.name == "nope" and info.value.obj is lab


def test_import_does_not_load_pandas_matplotlib_or_the_authority():
    code = ("import sys, mtlspop_lab; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'msal', 'mtlspop_lab.authority') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_lists_its_verbs_and_refuses_unknown_ones(capsys):
    from mtlspop_lab.cli import main
    assert main(["--help"]) == 0 and "demo" in capsys.readouterr().out
    assert main(["fly"]) == 2 and "unknown verb" in capsys.readouterr().err
    assert main([]) == 2
