"""daphne's requests here skip Twisted's form parsing (the soak's top growth between collections:
Twisted read every POST's Content-Type with `email.message.EmailMessage`, whose header registry
makes new classes each time; `twisted.web.http.Request.requestReceived` does so only while
`_parsePOSTFormSubmission` is true), and Twisted no longer writes a second access-log line for
each. Their read deadline is tested live (tests/live/test_bounds_live.py)."""

import io
from types import SimpleNamespace

import pytest
from daphne import http_protocol
from twisted.web.test.requesthelper import DummyChannel

from mcpsite import daphne_requests

pytestmark = pytest.mark.anyio  # daphne builds its requests on the running event loop


def daphne_request():
    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    return http_protocol.WebRequest(channel)  # what daphne builds for each request


async def test_daphnes_requests_skip_twisteds_form_parsing():
    daphne_requests.install()
    daphne_requests.install()  # idempotent: one subclass, not a chain of them
    assert sum(bool(cls.__dict__.get("bounded")) for cls in http_protocol.WebRequest.__mro__) == 1
    request = daphne_request()
    try:
        assert request._parsePOSTFormSubmission is False
    finally:
        request._stop_deadline()


async def test_twisted_writes_no_second_access_log_line():
    daphne_requests.install()
    factory = http_protocol.HTTPFactory(SimpleNamespace())
    factory._logFile = written = io.StringIO()  # where Twisted writes its line (its log, unless a file)
    request = daphne_request()
    try:
        factory.log(request)  # what Twisted calls as each request finishes
    finally:
        request._stop_deadline()
    assert written.getvalue() == ""
