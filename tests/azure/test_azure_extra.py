"""The azure extra is optional: ``import mtlspop_lab`` never loads it, and without it the adapters
raise ExtraNotInstalledError (a LabError with cause and fix), in a fresh interpreter where a
``sys.meta_path`` finder makes ``azure`` and ``aiohttp`` unimportable."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block(set(sys.argv[1].split(","))))
"""

PROBE = BLOCK + """
import json, mtlspop_lab as lab
found = {}
for name in sys.argv[2].split(","):
    try:
        getattr(lab, name)
        found[name] = None
    except lab.LabError as exc:
        found[name] = {"type": type(exc).__name__, "code": exc.code, "message": exc.message,
                       "fix": exc.fix, "is_configuration_error": isinstance(exc, lab.ConfigurationError)}
print(json.dumps(found))
"""


def run(blocked: str, names: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, blocked, names], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


SYNC = "MtlsPopCredential,MtlsPopAuthenticationPolicy,MtlsPopTransport,mtls_pop_pipeline_client"


def test_without_azure_core_every_adapter_raises_extra_not_installed():
    found = run("azure", SYNC + ",AsyncMtlsPopCredential,AsyncMtlsPopTransport")
    assert set(found) == set((SYNC + ",AsyncMtlsPopCredential,AsyncMtlsPopTransport").split(","))
    for name, error in found.items():
        assert error is not None, f"{name} loaded without azure-core"
        assert error["type"] == "ExtraNotInstalledError" and error["code"] == "extra_not_installed"
        assert error["is_configuration_error"]
        assert "azure-core" in error["message"] and "mtlspop-lab[azure]" in error["fix"]


def test_without_aiohttp_only_the_async_transport_is_missing():
    found = run("aiohttp", SYNC + ",AsyncMtlsPopTransport")
    assert {name for name, error in found.items() if error is None} == set(SYNC.split(","))
    assert found["AsyncMtlsPopTransport"]["code"] == "extra_not_installed"
    assert "aiohttp" in found["AsyncMtlsPopTransport"]["message"]


def test_the_rest_of_the_lab_works_without_the_extra():
    code = BLOCK + """
import mtlspop_lab as lab
with lab.LocalAuthority() as authority:
    app = authority.directory.register_app("no-azure")
    acq = lab.MtlsPopTokenAcquirer.for_confidential_client(app.client_id, app.tenant_id, app.certificate,
                                                           cloud=authority.cloud)
    result = acq.acquire_token("https://graph.microsoft.com")
    print(result.token_type, lab.call_resource(authority.resource_url, result).status_code)
    acq.close()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("azure", "aiohttp")))
"""
    out = subprocess.run([sys.executable, "-c", code, "azure,aiohttp"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["mtls_pop", "200", "[]"]


def test_importing_the_package_does_not_load_the_azure_sdk():
    code = ("import sys, mtlspop_lab; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'aiohttp') "
            "or m.startswith('mtlspop_lab.interop')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["azure.core", "aiohttp"])
def test_the_extra_is_installed_for_the_tests(module):
    """The test extra depends on mtlspop-lab[azure]: these adapters are tested, never skipped."""
    __import__(module)
