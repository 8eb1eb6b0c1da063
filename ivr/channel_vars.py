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

# Emergency routing (ivr/emergency/routing.py, ivr/flows/screen.py).
#: Set inheritable (``_IVR_SCREEN_PARENT``) on the caller's channel before
#: ``Dial``: the caller's channel name, where ``[callcenterscreen]`` puts the
#: officer's decision with ``SHARED()``.
SCREEN_PARENT = "IVR_SCREEN_PARENT"
#: Set inheritable on the caller's channel: who is calling, as the officer hears it.
SCREEN_FROM = "IVR_SCREEN_FROM"
#: Set by the ``screen`` flow on the officer's leg: ACCEPT (only this bridges),
#: DECLINE, TIMEOUT, LATE or TAKEN; copied to the caller's channel as
#: ``SHARED(IVR_SCREEN_DECISION)`` = ``<decision>:<attempt token>``.
SCREEN_DECISION = "IVR_SCREEN_DECISION"

# Emergency callbacks over AMI (ivr/emergency/callbacks.py, ivr/flows/ack.py).
#: Originate ``Variable:``s of a callback; ``[callcenter-callback]`` hands them to the ``ack`` flow.
CALLBACK_JOB = "IVR_CALLBACK_JOB"
CALLBACK_TOKEN = "IVR_CALLBACK_TOKEN"
