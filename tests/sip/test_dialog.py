"""Dialogs (RFC 3261 section 12): creation on both sides, in-dialog requests with loose and
strict routing, CSeq ordering, target refresh, and the early/confirmed/terminated life."""

from __future__ import annotations

import pytest

from rtcgw.sip.dialog import (
    DIALOG_TRANSITIONS,
    Dialog,
    DialogId,
    DialogState,
    DialogTrigger,
    Role,
)
from rtcgw.sip.errors import LocalProtocolError, RemoteProtocolError
from rtcgw.sip.headers import NameAddr, Via
from rtcgw.sip.ids import new_branch
from rtcgw.sip.message import Header, Request, Response
from rtcgw.sip.uri import SipUri, parse_uri
from tests.sip.helpers import make_request, respond_to, wire

P1 = "<sip:p1.example.org;lr>"
P2 = "<sip:p2.example.org;lr>"
BOB_CONTACT = "sip:bob@198.51.100.20:5062"


def state_of(dialog: Dialog) -> DialogState:
    # A function call, so that type checkers do not narrow ``dialog.state`` between asserts.
    return dialog.state


def via() -> Via:
    return Via.new("UDP", "192.0.2.10", 5060, new_branch())


def uac_dialog(
    status: int = 200, record_route: tuple[str, ...] = (P1, P2)
) -> tuple[Dialog, Request]:
    invite = make_request(cseq=10)
    response = respond_to(invite, status, contact=BOB_CONTACT, record_route=record_route)
    return Dialog.from_uac(invite, response), invite


def request_from_bob(
    method: str, cseq: int, *, contact: str | None = None, to_tag: str = "alice-tag"
) -> Request:
    """A request Bob sends inside the dialog Alice created (From/To swapped)."""
    return Request(
        method=method,
        uri=parse_uri("sip:alice@192.0.2.10:5060"),
        headers=(
            Header("Via", str(Via.new("UDP", "198.51.100.20", 5060, new_branch()))),
            Header("From", "Bob <sip:bob@example.org>;tag=bob-tag"),
            Header("To", f"Alice <sip:alice@example.org>;tag={to_tag}"),
            Header("Call-ID", "call-1@192.0.2.10"),
            Header("CSeq", f"{cseq} {method}"),
            *([Header("Contact", f"<{contact}>")] if contact else []),
        ),
    )


def response_to_ours(request: Request, status: int, *, contact: str | None = None) -> Response:
    return respond_to(request, status, contact=contact)


# -- creation --------------------------------------------------------------------------------------


def test_uac_dialog_from_2xx() -> None:
    dialog, _ = uac_dialog()
    assert dialog.role is Role.UAC
    assert state_of(dialog) is DialogState.CONFIRMED
    assert dialog.id == DialogId("call-1@192.0.2.10", "alice-tag", "bob-tag")
    assert dialog.local_seq == 10
    assert dialog.remote_seq is None  # 12.1.2: "The remote sequence number MUST be empty"
    assert dialog.remote_target == parse_uri(BOB_CONTACT)
    # 12.1.2: the route set is the Record-Route "taken in reverse order".
    assert [str(r) for r in dialog.route_set] == [P2, P1]
    assert dialog.local_party.tag == "alice-tag"
    assert dialog.remote_party.tag == "bob-tag"
    assert dialog.local_target == parse_uri("sip:alice@192.0.2.10:5060")
    assert dialog.secure is False


def test_uac_early_dialog_from_1xx_then_confirmed_with_route_set_recomputed() -> None:
    invite = make_request(cseq=1)
    ringing = respond_to(invite, 180, contact="sip:bob@early.example.org", record_route=[P1])
    dialog = Dialog.from_uac(invite, ringing)
    assert state_of(dialog) is DialogState.EARLY
    assert [str(r) for r in dialog.route_set] == [P1]

    ok = respond_to(invite, 200, contact=BOB_CONTACT, record_route=[P1, P2])
    dialog.receive_response(ok)
    assert state_of(dialog) is DialogState.CONFIRMED
    # 13.2.2.4: "the route set for the dialog MUST be recomputed based on the 2xx".
    assert [str(r) for r in dialog.route_set] == [P2, P1]
    assert dialog.remote_target == parse_uri(BOB_CONTACT)


def test_early_dialog_ends_on_a_failure_final_to_the_invite() -> None:
    invite = make_request()
    dialog = Dialog.from_uac(invite, respond_to(invite, 183, contact=BOB_CONTACT))
    dialog.receive_response(respond_to(invite, 486))
    assert state_of(dialog) is DialogState.TERMINATED  # 12.3


@pytest.mark.parametrize("status", [100, 300, 486])
def test_responses_that_do_not_create_a_dialog(status: int) -> None:
    invite = make_request()
    with pytest.raises(LocalProtocolError, match="does not create a dialog"):
        Dialog.from_uac(invite, respond_to(invite, status))


def test_provisional_without_to_tag_does_not_create_a_dialog() -> None:
    invite = make_request()
    with pytest.raises(LocalProtocolError, match="without To tag"):
        Dialog.from_uac(invite, respond_to(invite, 180, to_tag=None))


def test_2xx_without_to_tag_gives_a_null_remote_tag() -> None:
    invite = make_request()
    dialog = Dialog.from_uac(invite, respond_to(invite, 200, to_tag=None, contact=BOB_CONTACT))
    assert dialog.id.remote_tag == ""  # 12.1.2: "considered to have a value of null"


def test_uac_dialog_needs_the_response_of_that_request() -> None:
    invite = make_request(cseq=1)
    other = respond_to(make_request(cseq=2), 200)
    with pytest.raises(LocalProtocolError, match="does not answer"):
        Dialog.from_uac(invite, other)


def test_missing_contact_falls_back_to_the_request_uri() -> None:
    invite = make_request()
    dialog = Dialog.from_uac(invite, respond_to(invite, 200))
    assert dialog.remote_target == invite.uri


def test_uas_dialog_from_invite() -> None:
    invite = make_request(cseq=7, record_route=[P1, P2])
    local_contact = parse_uri("sip:gw@198.51.100.20:5060")
    dialog = Dialog.from_uas(invite, "bob-tag", local_contact)
    assert dialog.role is Role.UAS
    assert state_of(dialog) is DialogState.EARLY
    assert dialog.id == DialogId("call-1@192.0.2.10", "bob-tag", "alice-tag")
    assert dialog.remote_seq == 7
    assert dialog.local_seq is None  # 12.1.1: "The local sequence number MUST be empty"
    assert [str(r) for r in dialog.route_set] == [P1, P2]  # 12.1.1: in order
    assert dialog.remote_target == parse_uri("sip:alice@192.0.2.10:5060")
    assert dialog.local_party.tag == "bob-tag"
    assert dialog.local_target == local_contact

    dialog.response_sent(respond_to(invite, 180, to_tag="bob-tag"))
    assert state_of(dialog) is DialogState.EARLY
    dialog.response_sent(respond_to(invite, 200, to_tag="bob-tag"))
    assert state_of(dialog) is DialogState.CONFIRMED


def test_uas_early_dialog_ends_when_we_reject() -> None:
    invite = make_request()
    dialog = Dialog.from_uas(invite, "bob-tag", parse_uri("sip:gw@198.51.100.20"))
    dialog.response_sent(respond_to(invite, 603, to_tag="bob-tag"))
    assert state_of(dialog) is DialogState.TERMINATED


def test_uas_dialog_needs_a_contact() -> None:
    invite = make_request(contact=None)
    with pytest.raises(RemoteProtocolError) as info:
        Dialog.from_uas(invite, "bob-tag", parse_uri("sip:gw@198.51.100.20"))
    assert info.value.status_hint == 400


def test_uas_dialog_refuses_a_request_already_in_a_dialog() -> None:
    with pytest.raises(LocalProtocolError, match="existing dialog"):
        Dialog.from_uas(make_request(to_tag="x"), "bob-tag", parse_uri("sip:gw@h"))


def test_secure_flag_needs_tls_and_a_sips_uri() -> None:
    invite = make_request(uri="sips:bob@example.org")
    response = respond_to(invite, 200, contact="sips:bob@198.51.100.20")
    assert Dialog.from_uac(invite, response, over_tls=True).secure is True
    assert Dialog.from_uac(invite, response, over_tls=False).secure is False
    plain = make_request()
    assert Dialog.from_uac(plain, respond_to(plain, 200), over_tls=True).secure is False


def test_dialog_id_of_received_messages() -> None:
    bye = request_from_bob("BYE", 1)
    assert DialogId.of_received_request(bye) == DialogId(
        "call-1@192.0.2.10", "alice-tag", "bob-tag"
    )
    invite = make_request()
    assert DialogId.of_received_response(respond_to(invite, 200)) == DialogId(
        "call-1@192.0.2.10", "alice-tag", "bob-tag"
    )


# -- requests we send ------------------------------------------------------------------------------


def test_loose_routing_request() -> None:
    dialog, _ = uac_dialog()
    our_via = via()
    bye = dialog.create_request("BYE", our_via)

    assert bye.uri == parse_uri(BOB_CONTACT)  # 12.2.1.1: R-URI = remote target
    assert bye.values("Route") == [P2, P1]  # Route = route set, in order
    assert bye.top_via == our_via
    assert (bye.cseq.seq, bye.cseq.method) == (11, "BYE")
    assert bye.from_tag == "alice-tag"
    assert bye.to_tag == "bob-tag"
    assert bye.call_id == "call-1@192.0.2.10"
    assert bye.max_forwards == 70
    assert bye.get("Contact") is None  # BYE is not a target refresh
    assert dialog.local_seq == 11
    assert wire(bye) == bye  # it serialises and parses back unchanged


def test_strict_routing_request() -> None:
    strict = "<sip:strict.example.org;method=INVITE?X-H=1>"
    dialog, _ = uac_dialog(record_route=(P1, strict))  # reversed: strict first
    info = dialog.create_request("INFO", via())
    # 12.2.1.1: R-URI = first route (without parameters a R-URI may not carry), then the
    # rest of the route set, then the remote target as the last Route.
    assert info.uri == parse_uri("sip:strict.example.org")
    assert info.values("Route") == [P1, f"<{BOB_CONTACT}>"]


def test_empty_route_set() -> None:
    dialog, _ = uac_dialog(record_route=())
    request = dialog.create_request("UPDATE", via())
    assert request.uri == parse_uri(BOB_CONTACT)
    assert request.values("Route") == []


def test_cseq_increments_and_target_refresh_requests_carry_our_contact() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.create_request(
        "INVITE", via(), body=b"v=0\r\n", content_type="application/sdp"
    )
    assert reinvite.cseq.seq == 11
    assert reinvite.contacts[0].uri == parse_uri("sip:alice@192.0.2.10:5060")
    assert reinvite.content_length == 5
    assert reinvite.content_type == "application/sdp"
    custom = dialog.create_request(
        "UPDATE", via(), headers=(Header("Contact", "<sip:other@192.0.2.10>"),)
    )
    assert custom.cseq.seq == 12
    assert [c.uri for c in custom.contacts] == [parse_uri("sip:other@192.0.2.10")]


def test_uas_dialog_first_request_starts_the_local_cseq() -> None:
    invite = make_request(cseq=40)
    dialog = Dialog.from_uas(invite, "bob-tag", parse_uri("sip:gw@198.51.100.20"))
    dialog.response_sent(respond_to(invite, 200, to_tag="bob-tag"))
    bye = dialog.create_request("BYE", via())
    assert bye.cseq.seq == 1  # independent of the remote CSeq 40
    assert bye.from_tag == "bob-tag"
    assert bye.to_tag == "alice-tag"
    assert bye.uri == parse_uri("sip:alice@192.0.2.10:5060")


def test_ack_reuses_the_invite_cseq() -> None:
    dialog, invite = uac_dialog()
    ack = dialog.create_ack(invite.cseq.seq, via())
    assert (ack.cseq.seq, ack.cseq.method) == (10, "ACK")
    assert ack.uri == parse_uri(BOB_CONTACT)
    assert ack.values("Route") == [P2, P1]
    assert dialog.local_seq == 10  # unchanged
    with pytest.raises(LocalProtocolError, match="ACK for CSeq 11"):
        dialog.create_ack(11, via())


def test_ack_needs_a_confirmed_dialog() -> None:
    invite = make_request()
    dialog = Dialog.from_uac(invite, respond_to(invite, 180, contact=BOB_CONTACT))
    with pytest.raises(LocalProtocolError, match="confirmed dialog"):
        dialog.create_ack(1, via())


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_create_request_refuses_ack_and_cancel(method: str) -> None:
    dialog, _ = uac_dialog()
    with pytest.raises(LocalProtocolError, match="reuses the CSeq"):
        dialog.create_request(method, via())


def test_no_requests_on_a_terminated_dialog() -> None:
    dialog, _ = uac_dialog()
    dialog.terminate()
    with pytest.raises(LocalProtocolError, match="terminated dialog"):
        dialog.create_request("BYE", via())
    assert dialog.local_seq == 10


# -- requests from the peer ------------------------------------------------------------------------


def test_remote_cseq_ordering() -> None:
    dialog, _ = uac_dialog()
    dialog.receive_request(request_from_bob("INFO", 5))
    assert dialog.remote_seq == 5  # the first request sets it
    dialog.receive_request(request_from_bob("INFO", 5))  # equal: allowed
    dialog.receive_request(request_from_bob("INFO", 9))
    assert dialog.remote_seq == 9
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(request_from_bob("INFO", 8))
    assert info.value.status_hint == 500  # 12.2.2: out of order
    assert dialog.remote_seq == 9
    dialog.receive_request(request_from_bob("ACK", 1))  # ACK reuses an old CSeq: fine
    assert dialog.remote_seq == 9


def test_target_refresh_on_reinvite_and_update_only() -> None:
    dialog, _ = uac_dialog()
    dialog.receive_request(request_from_bob("INFO", 1, contact="sip:bob@info.example.org"))
    assert dialog.remote_target == parse_uri(BOB_CONTACT)  # INFO is not a target refresh
    dialog.receive_request(request_from_bob("INVITE", 2, contact="sip:bob@moved.example.org"))
    assert dialog.remote_target == parse_uri("sip:bob@moved.example.org")
    dialog.receive_request(request_from_bob("UPDATE", 3, contact="sip:bob@again.example.org"))
    assert dialog.remote_target == parse_uri("sip:bob@again.example.org")
    dialog.receive_request(request_from_bob("UPDATE", 4))  # no Contact: target kept
    assert dialog.remote_target == parse_uri("sip:bob@again.example.org")


def test_bye_terminates_and_later_requests_get_481() -> None:
    dialog, _ = uac_dialog()
    dialog.receive_request(request_from_bob("BYE", 3))
    assert state_of(dialog) is DialogState.TERMINATED
    with pytest.raises(RemoteProtocolError) as info:
        dialog.receive_request(request_from_bob("INFO", 4))
    assert info.value.status_hint == 481


def test_request_of_another_dialog_is_a_local_error() -> None:
    dialog, _ = uac_dialog()
    with pytest.raises(LocalProtocolError, match="routed to"):
        dialog.receive_request(request_from_bob("INFO", 1, to_tag="someone-else"))


# -- responses to our requests ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 481])
def test_481_and_408_terminate_the_dialog(status: int) -> None:
    dialog, _ = uac_dialog()
    info = dialog.create_request("INFO", via())
    dialog.receive_response(response_to_ours(info, status))
    assert state_of(dialog) is DialogState.TERMINATED  # 12.2.1.2


def test_2xx_to_reinvite_refreshes_the_target_but_other_responses_do_not() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.create_request("INVITE", via())
    dialog.receive_response(response_to_ours(reinvite, 491, contact="sip:bob@nope.example.org"))
    assert dialog.remote_target == parse_uri(BOB_CONTACT)
    assert state_of(dialog) is DialogState.CONFIRMED  # a failed re-INVITE keeps the dialog
    reinvite = dialog.create_request("INVITE", via())
    dialog.receive_response(response_to_ours(reinvite, 200, contact="sip:bob@new.example.org"))
    assert dialog.remote_target == parse_uri("sip:bob@new.example.org")
    info = dialog.create_request("INFO", via())
    dialog.receive_response(response_to_ours(info, 200, contact="sip:bob@info.example.org"))
    assert dialog.remote_target == parse_uri("sip:bob@new.example.org")


def test_final_response_to_our_bye_terminates() -> None:
    dialog, _ = uac_dialog()
    bye = dialog.create_request("BYE", via())
    dialog.receive_response(response_to_ours(bye, 100, contact=None))
    assert state_of(dialog) is DialogState.CONFIRMED
    dialog.receive_response(response_to_ours(bye, 200))
    assert state_of(dialog) is DialogState.TERMINATED
    dialog.receive_response(response_to_ours(bye, 200))  # a late copy changes nothing
    assert state_of(dialog) is DialogState.TERMINATED


def test_response_of_another_fork_is_a_local_error() -> None:
    invite = make_request()
    dialog = Dialog.from_uac(invite, respond_to(invite, 180, contact=BOB_CONTACT))
    with pytest.raises(LocalProtocolError, match="routed to"):
        dialog.receive_response(respond_to(invite, 200, to_tag="other-fork"))
    assert state_of(dialog) is DialogState.EARLY


def test_response_sent_is_for_uas_dialogs() -> None:
    dialog, invite = uac_dialog()
    with pytest.raises(LocalProtocolError, match="UAS"):
        dialog.response_sent(respond_to(invite, 200))


# -- the table -------------------------------------------------------------------------------------


def test_dialog_table_is_total_and_terminated_absorbs() -> None:
    for state in DialogState:
        assert set(DIALOG_TRANSITIONS[state]) == set(DialogTrigger)
    assert set(DIALOG_TRANSITIONS[DialogState.TERMINATED].values()) == {DialogState.TERMINATED}
    assert DIALOG_TRANSITIONS[DialogState.EARLY][DialogTrigger.SUCCESS] is DialogState.CONFIRMED
    assert DIALOG_TRANSITIONS[DialogState.CONFIRMED][DialogTrigger.FAILURE] is (
        DialogState.CONFIRMED
    )


def test_strict_route_uri_keeps_allowed_parameters() -> None:
    strict = NameAddr(None, SipUri(host="strict.example.org", params=(("transport", "tcp"),)))
    dialog, _ = uac_dialog(record_route=(str(strict),))
    request = dialog.create_request("INFO", via())
    assert request.uri == SipUri(host="strict.example.org", params=(("transport", "tcp"),))
