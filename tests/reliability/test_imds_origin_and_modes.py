"""IMDS refuses relayed and rebound requests; its mode changes are all or nothing."""

from __future__ import annotations

import socket

import pytest
import requests

from mtlspop_lab.errors import LabError

COMPUTE = "/metadata/instance/compute?api-version=2021-02-01"
TOKEN = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://graph.microsoft.com"


def _get(lab, path, headers):
    with requests.Session() as session:
        session.trust_env = False
        return session.get(lab.imds_url + path, headers={"Metadata": "true", **headers}, timeout=10)


@pytest.mark.parametrize("path", [COMPUTE, TOKEN])
def test_x_forwarded_for_is_refused(lab, path):
    assert _get(lab, path, {}).status_code == 200
    answer = _get(lab, path, {"X-Forwarded-For": "203.0.113.7"})
    assert answer.status_code == 400
    assert "access_token" not in answer.json()


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "169.254.169.254.attacker.example"])
def test_a_host_that_is_not_this_machine_is_refused(lab, host):
    port = lab.listener_addresses()["imds"][1]
    answer = _get(lab, TOKEN, {"Host": host.format(port=port)})
    assert answer.status_code == 400
    assert "access_token" not in answer.json()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "169.254.169.254", "LOCALHOST"])
def test_the_machine_own_addresses_are_served(lab, host):
    port = lab.listener_addresses()["imds"][1]
    assert _get(lab, TOKEN, {"Host": host.format(port=port)}).status_code == 200


def test_a_hostile_nested_json_body_is_a_400_not_a_500(lab):
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(lab.imds_url + "/metadata/identity/issuecredential?cred-api-version=2.0",
                              headers={"Metadata": "true"}, data="[" * 200_000, timeout=10)
    assert answer.status_code == 400


def test_imds_mode_change_is_all_or_nothing(lab):
    lab.set_imds_mode("absent")
    port = lab.imds_url.rsplit(":", 1)[1]
    squatter = socket.socket()
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # past TIME_WAIT, never past a listener
        squatter.bind(("127.0.0.1", int(port)))
        squatter.listen()
        with pytest.raises(LabError) as info:
            lab.set_imds_mode("v2")
        assert info.value.code == "imds_port_taken"
        assert lab.imds_mode == "absent"                     # the knob did not move
        assert "imds" not in lab.listener_addresses()
    finally:
        squatter.close()
    lab.set_imds_mode("v2")
    assert lab.imds_mode == "v2"
    assert _get(lab, COMPUTE, {}).status_code == 200


KNOBS = {
    "delay NaN": lambda lab: lab.set_delay(float("nan")),
    "delay infinite": lambda lab: lab.set_delay(float("inf"), "imds"),
    "lifetime NaN": lambda lab: lab.set_token_lifetime(float("nan")),
    "fault count not a number": lambda lab: lab.inject_fault("status", count="two"),
    "fault status not a number": lambda lab: lab.inject_fault("status", status="five hundred"),
    "fault delay not a number": lambda lab: lab.inject_fault("slow", delay_ms="slow"),
    "fault delay NaN": lambda lab: lab.inject_fault("slow", delay_ms=float("nan")),
}


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_a_bad_knob_value_is_a_lab_error_and_changes_nothing(lab, knob):
    before = (lab.delays(), lab.token_lifetime_s, list(lab.pending_faults), lab.imds_mode)
    with pytest.raises(LabError):
        KNOBS[knob](lab)
    assert (lab.delays(), lab.token_lifetime_s, list(lab.pending_faults), lab.imds_mode) == before
