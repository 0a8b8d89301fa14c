"""The portal form offers exactly what the law tables allow, and says why not the rest."""

from __future__ import annotations

import pytest

from bcpctl.web.requestform import form_of_basis
from victim_support.policy import BASES


@pytest.mark.parametrize("basis", list(BASES))
def test_allowed_fields_are_the_basis_fields(basis: str) -> None:
    options = form_of_basis(basis)
    allowed = {o.key for o in options.fields if o.allowed}
    assert allowed == set(BASES[basis].fields) - {"name_fallback"}
    for option in options.fields:
        assert option.allowed == (not option.reason)
        if not option.allowed:
            assert basis in option.reason and BASES[basis].law in option.reason
    assert {o.key for o in options.purposes if o.allowed} == set(BASES[basis].purposes)
    assert {o.key for o in options.never} >= {"kojin_bango", "juminhyo_code", "honseki"}


def test_support_list_basis_forces_support_only_and_allows_phone() -> None:
    options = form_of_basis("DMA-49-11-3")
    assert options.support_only
    phone = next(o for o in options.fields if o.key == "phone")
    assert phone.allowed and "WELFARE_CHECK" in phone.needed_for
    assert not form_of_basis("APPI-69-2-3").support_only
