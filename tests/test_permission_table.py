"""The permission table is made from the organs file (issue 14): a new organ is one line of
data, and no organ may take the name of one of Jiedu's own parties."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.organs import Organ, Organs, load_organs
from services import bootstrap
from services.adapters import permissions
from services.adapters.identities import Credentials


def with_organ(code: str) -> Organs:
    district = load_organs()
    return Organs(
        district=district.district,
        organs=(*district.organs, Organ(code=code, name="新设机构", kind="department")),
    )


def test_a_new_organ_is_one_line_of_data() -> None:
    organs = with_organ("new_bureau")
    table = permissions.table(organs)
    assert table["new_bureau"].publish == ("jiedu.intake.new_bureau.*.*",)
    assert table["new_bureau"].subscribe == (
        "jiedu.outcomes.new_bureau.*", "_INBOX_new_bureau.>"
    )
    assert set(table) == {o.code for o in organs.organs} | set(permissions.SERVICES)


def test_the_generated_authorisation_has_a_user_per_party_and_no_anonymous_one(
    tmp_path: Path,
) -> None:
    creds = Credentials(tmp_path / "creds")
    organs = load_organs()
    text = creds.write_authorization(organs).read_text()
    assert text.count('"nkey"') == len(organs.organs) + len(permissions.SERVICES)
    assert "no_auth_user" not in text and "password" not in text
    for party in permissions.table(organs):
        assert creds.public_key(party) in text


def test_only_the_monitor_and_no_department_speaks_on_the_monitor_subject() -> None:
    """OP-5 at the door: the cyberspace office's own OA system is denied the monitor's
    subject, which only the monitor may use."""
    table = permissions.table(load_organs())
    office = table["cyberspace_office"]
    assert "jiedu.intake.cyberspace_office.monitor.*" in office.publish_deny
    assert table[permissions.MONITOR_PARTY].publish == (
        "jiedu.intake.cyberspace_office.monitor.*",
    )


def test_only_the_operator_may_administer_streams() -> None:
    table = permissions.table(load_organs())
    for party, p in table.items():
        administers = any(s in ("$JS.API.>", "$JS.API.STREAM.>") or ".STREAM.UPDATE" in s
                          or ".STREAM.DELETE" in s or ".STREAM.PURGE" in s
                          or ".STREAM.CREATE" in s for s in p.publish)
        assert administers == (party == permissions.OPERATOR), party


@pytest.mark.parametrize("code", list(permissions.SERVICES))
def test_an_organ_named_like_a_service_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="names of Jiedu's own parties"):
        permissions.table(with_organ(code))


def test_a_connection_name_that_speaks_for_no_party_is_an_error_naming_the_parties(
    tmp_path: Path,
) -> None:
    """No connection falls back to an identity: the read-only commands name the auditor."""
    assert bootstrap.party_of("jiedu-deadlines") == permissions.DEADLINES
    for unknown in ("jiedu-tail", "jiedu-typo", ""):
        with pytest.raises(bootstrap.UnknownConnection) as refused:
            bootstrap.identity("nats://127.0.0.1:1", unknown)
        said = str(refused.value)
        assert repr(unknown) in said
        assert all(party in said for party in permissions.SERVICES)
    Credentials(tmp_path).ensure(load_organs())
    named = bootstrap.identity("nats://127.0.0.1:1", "jiedu-tail", party=permissions.AUDITOR,
                               credentials=tmp_path)
    assert named["nkeys_seed_str"] == Credentials(tmp_path).seed(permissions.AUDITOR)
