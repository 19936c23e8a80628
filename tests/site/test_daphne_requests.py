"""daphne's requests here skip Twisted's form parsing (the soak's top growth between collections:
Twisted read every POST's Content-Type with `email.message.EmailMessage`, whose header registry
makes new classes each time; `twisted.web.http.Request.requestReceived` does so only while
`_parsePOSTFormSubmission` is true). Their read deadline is tested live (tests/live/test_bounds_live.py)."""

from types import SimpleNamespace

from daphne import http_protocol
from twisted.web.test.requesthelper import DummyChannel

from mcpsite import daphne_requests


def test_daphnes_requests_skip_twisteds_form_parsing():
    daphne_requests.install()
    daphne_requests.install()  # idempotent: one subclass, not a chain of them
    assert sum(bool(cls.__dict__.get("bounded")) for cls in http_protocol.WebRequest.__mro__) == 1
    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    request = http_protocol.WebRequest(channel)  # what daphne builds for each request
    try:
        assert request._parsePOSTFormSubmission is False
    finally:
        request._stop_deadline()
