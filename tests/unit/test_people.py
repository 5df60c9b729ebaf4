"""How parties read (custody/services/people.py): staff by name, role and agency; an owner by
registered name or one stable pseudonym, never their details in the short form."""

from __future__ import annotations

from custody.services.people import Party, owner_pseudonym


def test_staff_read_as_name_role_and_agency() -> None:
    dana = Party("u1", "staff", "u1", "Dana Reyes", role="investigator", agency="MPD")
    assert dana.label() == "Dana Reyes (investigator, MPD)" == dana.short()


def test_an_owner_is_named_or_pseudonymised_and_short_form_hides_the_name() -> None:
    ann = Party("tok-1", "owner", "owner-id-1", "Ann Lee", role="owner", camera_label="Front door")
    assert ann.label() == "Ann Lee (owner of “Front door”)"
    pseudonym = owner_pseudonym("owner-id-1")
    assert ann.label(pseudonymise_owners=True) == f"{pseudonym} (owner of “Front door”)"
    # One owner, two consent links: the same pseudonym, so the report shows one party.
    again = Party("tok-2", "owner", "owner-id-1", "Ann Lee", role="owner", camera_label="Front door")
    assert again.label(pseudonymise_owners=True) == ann.label(pseudonymise_owners=True)
    assert owner_pseudonym("owner-id-2") != pseudonym
    assert ann.short() == "owner of “Front door”" and "Ann" not in ann.short()


def test_cameras_and_custody_itself_read_by_name() -> None:
    assert Party("camera:c1", "camera", "c1", "Loading bay").label() == "integrated camera “Loading bay”"
    assert (
        Party("custody-ledger", "system", "custody-ledger", "custody (ledger)").label() == "custody (ledger)"
    )
