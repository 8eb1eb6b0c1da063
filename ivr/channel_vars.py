"""Channel variables shared between our flows and ``dialplans/extensions.conf``.

The dialplan branches only on what we set here, never on ``AGISTATUS`` (which
says SUCCESS even when a handler crashed). ``tests/test_dialplan.py`` checks
that the dialplan reads exactly these names and that the code sets them.
"""

#: Outcome of a flow, read by the dialplan after ``AGI()`` returns.
RESULT = "IVR_RESULT"
RESULT_OK = "OK"
RESULT_NOROUTE = "NOROUTE"
RESULT_FAILED = "FAILED"
