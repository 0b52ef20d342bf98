"""Cloud URL rules for live targets: MSAL's login -> mtlsauth mapping, regions, refusals."""

import pytest

from mtlspop_lab.cloud import Cloud, check_region, check_tenant
from mtlspop_lab.errors import ConfigurationError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.mark.parametrize("host", ["login.microsoftonline.com", "login.windows.net",
                                  "login.microsoft.com", "sts.windows.net"])
def test_public_hosts_map_to_mtlsauth_microsoft_com(host):
    cloud = Cloud.for_login_host(host)
    assert cloud.mtls_token_endpoint(TENANT) == f"https://mtlsauth.microsoft.com/{TENANT}/oauth2/v2.0/token"
    assert cloud.mtls_token_endpoint(TENANT, "westus3") == \
        f"https://westus3.mtlsauth.microsoft.com/{TENANT}/oauth2/v2.0/token"


def test_sovereign_and_custom_login_hosts_replace_login_prefix():
    assert Cloud.for_login_host("login.microsoftonline.us").mtls_base_url() == "https://mtlsauth.microsoftonline.us"
    assert Cloud.for_login_host("https://login.mylab.example/").mtls_base_url("eastus") == \
        "https://eastus.mtlsauth.mylab.example"


@pytest.mark.parametrize("host", ["login.usgovcloudapi.net", "login.chinacloudapi.cn", "sts.contoso.example"])
def test_unsupported_hosts_are_refused(host):
    with pytest.raises(ConfigurationError) as info:
        Cloud.for_login_host(host).mtls_base_url()
    assert info.value.code == "mtls_pop_not_supported_for_environment"


@pytest.mark.parametrize("tenant", ["common", "organizations", "Common"])
def test_untenanted_authorities_are_refused_for_mtls(tenant):
    with pytest.raises(ConfigurationError) as info:
        Cloud.public().mtls_token_endpoint(tenant)
    assert info.value.code == "missing_tenanted_authority"
    assert Cloud.public().authority_url(tenant).endswith("/" + tenant)  # fine for msal's authority


@pytest.mark.parametrize("bad", ["", "   ", None, "a/b", "x" * 300, "tenant?x=1"])
def test_bad_tenants(bad):
    with pytest.raises(ConfigurationError):
        check_tenant(bad)


@pytest.mark.parametrize("bad", ["", "West US", "1westus", None, "a" * 60, "westus3.evil.example"])
def test_bad_regions(bad):
    with pytest.raises(ConfigurationError) as info:
        check_region(bad)
    assert info.value.code == "invalid_region"


def test_local_cloud_uses_explicit_regional_urls():
    cloud = Cloud(name="local", login_url="https://127.0.0.1:1/", mtls_url="https://127.0.0.1:2",
                  regional_mtls_urls={"westus3": "https://127.0.0.1:3/"}, is_local=True)
    assert cloud.login_url == "https://127.0.0.1:1"
    assert cloud.mtls_base_url() == "https://127.0.0.1:2"
    assert cloud.mtls_base_url("WestUS3") == "https://127.0.0.1:3"
    with pytest.raises(ConfigurationError, match="westus3") as info:
        cloud.mtls_base_url("eastus")
    assert info.value.code == "unknown_region"


def test_public_cloud_defaults():
    cloud = Cloud.public()
    assert cloud.imds_token_url() == "http://169.254.169.254/metadata/identity/oauth2/token"
    assert cloud.token_endpoint(TENANT) == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert not cloud.is_local and cloud.ca_bundle is None


@pytest.mark.parametrize("host", ["[", "https://[", "login.[x]", "login.ex ample.com", "login.a\nb", "", None])
def test_login_host_must_be_a_host_name(host):
    with pytest.raises(ConfigurationError):
        Cloud.for_login_host(host)


def test_msal_host_rule_keeps_the_port_and_path():
    from mtlspop_lab.cloud import mtls_pop_host, mtls_pop_url
    assert mtls_pop_url("https://login.mtlspop.localhost:8443/t/oauth2/v2.0/token") == \
        "https://mtlsauth.mtlspop.localhost:8443/t/oauth2/v2.0/token"
    assert mtls_pop_url("https://login.mtlspop.localhost:8443", "westus3") == \
        "https://westus3.mtlsauth.mtlspop.localhost:8443"
    assert mtls_pop_host("login.windows.net", "eastus2") == "eastus2.mtlsauth.microsoft.com"
    with pytest.raises(ConfigurationError) as info:
        mtls_pop_url("https://sts.mtlspop.localhost:1/t")
    assert info.value.code == "mtls_pop_not_supported_for_environment"


def test_a_local_cloud_with_regions_derives_its_mtls_hosts_by_rule():
    cloud = Cloud(name="lab", login_url="https://login.mtlspop.localhost:4443", regions=("westus3",),
                  is_local=True)
    assert cloud.mtls_base_url() == "https://mtlsauth.mtlspop.localhost:4443"
    assert cloud.mtls_token_endpoint(TENANT, "westus3") == \
        f"https://westus3.mtlsauth.mtlspop.localhost:4443/{TENANT}/oauth2/v2.0/token"
    with pytest.raises(ConfigurationError) as info:
        cloud.mtls_base_url("eastus")
    assert info.value.code == "unknown_region"
    with pytest.raises(ConfigurationError) as info:
        Cloud(name="x", login_url="https://login.x.test", regions=("not a region",))
    assert info.value.code == "invalid_region"
