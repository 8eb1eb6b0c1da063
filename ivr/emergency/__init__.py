"""Emergency routing (issue 5): the duty roster, escalation with call screening,
and callbacks over AMI until someone acknowledges.

* ``roster``: the roster as plain data, and planning the chain in force now (pure);
  ``RosterCache`` keeps the roster in memory so routing never waits on the database.
* ``document``: the roster as the API shows and accepts it (validation, no I/O).
* ``store``: the roster in the database.
* ``routing``: one screened Dial attempt and its outcome; the live attempts the
  ``screen`` flow decides on.
* ``callbacks``: alarms of unanswered emergencies and the callback loop.
* ``service``: the parts built and started together (``build_emergency``).

This package's ``__init__`` imports nothing, so that ``ivr.config`` can use the
dial-string check in ``roster`` without pulling in the database or AMI layers.
"""
