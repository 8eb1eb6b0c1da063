"""A simulated Asterisk 22.10.1 that plays the Asterisk side of FastAGI over TCP.

``ivr call`` and every integration test use it as the fake Asterisk: it connects
to our FastAGI server, sends the environment block, answers each command byte for
byte as the real Asterisk did in ``shared/asterisk/transcripts/agi-*.txt``, plays
a scripted caller, and keeps a conversation log. Time is virtual: prompts, digit
timeouts and recordings take no wall-clock time (``pace`` adds think time for
benchmarks).

What it sends, straight from the transcripts (``<<`` Asterisk, ``>>`` server)::

    << b'agi_network: yes\\n'
    << b'agi_network_script: stream?lang=id\\n'
    << b'agi_request: agi://127.0.0.1:4573/stream?lang=id\\n'
    ...                                              (17 more agi_* lines)
    << b'agi_accountcode: \\n'
    << b'agi_threadid: 140071603037888\\n'
    << b'agi_arg_1: first-arg\\n'
    << b'\\n'
    >> b'STREAM FILE demo-congrats "0123456789*#"\\n'
    << b'200 result=53 endpos=26400\\n'          (caller pressed 5 after 3.3 s)
    >> b'GET DATA beep 3000 4\\n'
    << b'200 result=12 (timeout)\\n'
    >> b'RECORD FILE /srv/asterisk-lab/rec/test wav "#" 5000 0 BEEP s=2\\n'
    << b'200 result=35 (dtmf) endpos=9612\\n'
    >> b'SAY NUMBER abc ""\\n'
    << b'520-Invalid command syntax.  Proper usage follows:\\n'
    << b'Say a given number, returning early if any of the given DTMF digits ...\\n'
    << b'520 End of proper usage.\\n'
    >> b'STREAM FILE demo-congrats ""\\n'            (caller hangs up after 2.5 s)
    << b'200 result=-1 endpos=20000\\n'
    << b'HANGUP\\n'
    >> b'ANSWER\\n'
    << b'511 Command Not Permitted on a dead channel or intercept routine\\n'

How commands are read, split and matched follows ``res/res_agi.c`` of 22.10.1
(``run_agi`` fgets into ``AGI_BUF_LEN``, ``parse_args``, ``find_command``, the
``handle_*`` functions); the usage texts of the ``520`` blocks are the command
descriptions as Asterisk's xmldoc prints them (the ones captured in
``agi-errors.txt`` match byte for byte).

The caller is scripted by key groups, consumed in order (see :func:`parse_key_group`):

* ``"1"``, ``"05122026#"``: pressed at the next command that accepts DTMF
  (STREAM FILE / CONTROL STREAM FILE with escape digits, GET DATA, GET OPTION,
  WAIT FOR DIGIT, RECORD FILE with escape digits). Digits after the one that ends
  the command stay buffered as type-ahead for the next such command
  (``agi-typeahead.txt``: ``123#`` gives STREAM FILE ``result=49`` and the GET
  DATA after it ``result=23``); a prompt that cannot be interrupted loses them.
* ``""``: the caller presses nothing there (timeout).
* ``"h"``: hang up during the next command of any kind that plays or waits,
  DTMF or not (STREAM FILE ``""``, SAY, EXEC Playback/Dial/Wait included); a
  command that takes no time (ANSWER, SET VARIABLE) cannot be hung up "during",
  so it lets the ``h`` pass to the next one. ``"h!"``: hang up while the server
  is idle, so ``HANGUP`` arrives unprompted before the next reply.
* ``"rec:5"``: the next RECORD FILE records 5 s, then the caller presses ``#``;
  ``"rec:5:h"`` hangs up instead, ``"rec:5:s"`` goes silent (silence detection).
* ``"@<seconds>"`` after a group sets when, inside the command, the caller acts
  (``"5@3.3"``, ``"h@2.5"``); this is what makes ``endpos`` match a transcript.
* When the script runs out, ``key_source`` (interactive mode) is asked, and without
  one the caller hangs up at the next DTMF-accepting command, so no test loops.

Audio checks (agi-wavrate.txt, format_wav.c ``check_header``): a name to play
(STREAM FILE, GET DATA, GET OPTION, CONTROL STREAM FILE, EXEC Playback) is given
without extension and must exist as ``<name>.wav`` (8000 Hz, mono, 16-bit PCM,
format 1) or raw 8 kHz ``<name>.sln`` (``.slin``/``.raw``: the only names
format_sln gives 8 kHz signed linear; a ``.sln8`` file is not found by Asterisk).
Anything else answers like Asterisk (``200 result=-1 endpos=0``) and is listed in
``CallRecord.audio_problems``; ``.wav16``/``.sln16`` play, as they do on the real
Asterisk, but are listed too. ``<name>.txt`` next to the file (UTF-8) is what the
prompt says, for the conversation log.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import math
import os
import re
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import urlencode

__all__ = [
    "AudioProblem",
    "CallRecord",
    "CallSetup",
    "CallTimeout",
    "DialAttempt",
    "Dialled",
    "DigitsReturned",
    "ErrorReply",
    "Event",
    "FastAGIPeer",
    "HungUp",
    "KeyGroup",
    "KeysPressed",
    "Prompt",
    "PromptFile",
    "PromptPlayed",
    "Recorded",
    "Said",
    "SessionEnded",
    "SimulatedAsterisk",
    "VariableSet",
    "parse_args",
    "parse_key_group",
    "place_call",
    "stdin_key_source",
]

ASTERISK_VERSION = "22.10.1"
#: ``run_agi`` reads a command with fgets into ``char buf[AGI_BUF_LEN]`` (8192):
#: at most 8191 bytes per command; the rest of a longer line is the next command.
AGI_BUF_LEN = 8192
#: ``parse_args`` stores at most MAX_ARGS - 1 = 127 words (verb words included).
MAX_ARGS = 128

HANGUP = b"HANGUP\n"
REPLY_510 = b"510 Invalid or unknown command\n"
REPLY_511 = b"511 Command Not Permitted on a dead channel or intercept routine\n"
USAGE_HEAD = b"520-Invalid command syntax.  Proper usage follows:\n"
USAGE_TAIL = b"520 End of proper usage.\n"
USAGE_UNAVAILABLE = b"520 Invalid command syntax.  Proper usage not available.\n"

#: When, inside a command, a scripted caller acts unless the group says ``@<s>``
#: (capped at half the command's natural length, so ``h`` always lands inside it).
KEY_DELAY = 1.0
#: ``SendDTMF`` defaults: 100 ms per tone, 250 ms between tones.
DIGIT_GAP = 0.35
#: A caller left with nothing to do (no limit, no script) gives up after this long.
CALLER_PATIENCE = 30.0
#: RECORD FILE stopped by its time limit records about 100 ms less than the limit:
#: ``5000 ms`` gave ``endpos=39200`` in agi-record-timeout.txt.
RECORD_LIMIT_SHORTFALL_MS = 100
#: A ``#`` stop rewinds the recording 200 ms (``ast_stream_rewind(fs, 200)``).
RECORD_DTMF_REWIND_MS = 200
#: What a test gets when it dials a target it gave no outcome for: the same as an
#: extension that does not exist (agi-dial-unavail.txt).
DEFAULT_DIAL_OUTCOME = "CHANUNAVAIL"

#: Asterisk stock sounds the lab had installed (asterisk-core-sounds-en); relative
#: names are looked up here after ``sounds_dir``. Lengths in 8 kHz samples, from
#: the transcripts' ``endpos`` (hello-world 11234, vm-intro 45235) or their timing
#: (beep ~0.43 s; demo-congrats ~30 s, tt-monkeys 16 s, demo-instruct approximate).
STOCK_SOUNDS: dict[str, tuple[int, str]] = {
    "beep": (3440, "[beep]"),
    "hello-world": (11234, "Hello world."),
    "vm-intro": (45235, "Please leave your message after the tone. When done, hang up, or press the pound key."),
    "demo-congrats": (240000, "Congratulations. You have successfully installed and executed the Asterisk PBX."),
    "demo-instruct": (160000, "[Asterisk demo instructions]"),
    "tt-monkeys": (128000, "[monkeys screeching]"),
}

#: Extensions that show a prompt path was passed with its extension (Asterisk then
#: looks for ``tone-8000.wav.wav`` and fails: agi-wavrate.txt).
_AUDIO_EXTENSIONS = frozenset(
    "wav wav16 wav49 sln slin sln8 sln12 sln16 sln24 sln32 sln44 sln48 sln96 sln192 raw gsm ulaw ul mu "
    "alaw al pcm g722 g723 g726 g729 ilbc ogg mp3 au vox siren7 siren14 opus".split()
)

# (command words, allowed on a dead channel) in the order of res_agi.c's
# ``commands[]`` (3911-3958); ``gosub`` is registered by app_stack.c.
_COMMANDS: tuple[tuple[tuple[bytes, ...], bool], ...] = tuple(
    (tuple(word.encode() for word in words.split()), dead)
    for words, dead in (
        ("answer", False),
        ("asyncagi break", True),
        ("channel status", False),
        ("database del", True),
        ("database deltree", True),
        ("database get", True),
        ("database put", True),
        ("exec", True),
        ("get data", False),
        ("get full variable", True),
        ("get option", False),
        ("get variable", True),
        ("hangup", False),
        ("noop", True),
        ("receive char", False),
        ("receive text", False),
        ("record file", False),
        ("say alpha", False),
        ("say digits", False),
        ("say number", False),
        ("say phonetic", False),
        ("say date", False),
        ("say time", False),
        ("say datetime", False),
        ("send image", False),
        ("send text", False),
        ("set autohangup", False),
        ("set callerid", False),
        ("set context", False),
        ("set extension", False),
        ("set music", False),
        ("set priority", False),
        ("set variable", True),
        ("stream file", False),
        ("control stream file", False),
        ("tdd mode", False),
        ("verbose", True),
        ("wait for digit", False),
        ("speech create", False),
        ("speech set", False),
        ("speech destroy", True),
        ("speech load grammar", False),
        ("speech unload grammar", True),
        ("speech activate grammar", False),
        ("speech deactivate grammar", False),
        ("speech recognize", False),
        ("gosub", False),
    )
)

#: ``ast_named_caller_presentation``: what ``CALLERID(pres)`` reads.
_PRESENTATION_NAMES = {
    0x00: "allowed_not_screened",
    0x01: "allowed_passed_screen",
    0x02: "allowed_failed_screen",
    0x03: "allowed",
    0x20: "prohib_not_screened",
    0x21: "prohib_passed_screen",
    0x22: "prohib_failed_screen",
    0x23: "prohib",
    0x43: "unavailable",
}

#: Dialplan applications that exist on a real Asterisk but are not simulated:
#: EXEC answers ``200 result=0`` and the call record gets a warning (``-2`` would
#: claim they are missing).
_UNSIMULATED_APPS = frozenset(
    app.lower()
    for app in (
        "Background BackgroundDetect ChanSpy Echo Gosub GosubIf Goto GotoIf MixMonitor MusicOnHold Progress "
        "Read Record Ringing SayAlpha SayDigits SayNumber SendDTMF SIPAddHeader StopMixMonitor System "
        "TryExec UserEvent WaitExten"
    ).split()
)

# The descriptions Asterisk prints in a 520 block: ``ast_xmldoc_build_description``
# of each command's XML documentation in res_agi.c / app_stack.c at tag 22.10.1.
# GET DATA, STREAM FILE, WAIT FOR DIGIT, GET VARIABLE, EXEC, SAY NUMBER and
# SET VARIABLE are byte-identical to agi-errors.txt (tests/test_transcripts.py).
_USAGE: dict[str, str] = {
    "ANSWER": (
        "Answers channel if not already in answer state. Returns <literal>-1</literal> on channel failure, "
        "or <literal>0</literal> if successful."
    ),
    "ASYNCAGI BREAK": (
        "Interrupts expected flow of Async AGI commands and returns control to previous source (typically, "
        "the PBX dialplan)."
    ),
    "CHANNEL STATUS": (
        "Returns the status of the specified <replaceable>channelname</replaceable>. If no channel name is "
        "given then returns the status of the current channel.\n"
        "Return values:\n"
        "    <enum>0</enum> - Channel is down and available.\n"
        "    <enum>1</enum> - Channel is down, but reserved.\n"
        "    <enum>2</enum> - Channel is off hook.\n"
        "    <enum>3</enum> - Digits (or equivalent) have been dialed.\n"
        "    <enum>4</enum> - Line is ringing.\n"
        "    <enum>5</enum> - Remote end is ringing.\n"
        "    <enum>6</enum> - Line is up.\n"
        "    <enum>7</enum> - Line is busy."
    ),
    "CONTROL STREAM FILE": (
        "Send the given file, allowing playback to be controlled by the given digits, if any. Use double "
        "quotes for the digits if you wish none to be permitted. If offsetms is provided then the audio will "
        "seek to offsetms before play starts. Returns <literal>0</literal> if playback completes without a "
        "digit being pressed, or the ASCII numerical value of the digit if one was pressed, or "
        "<literal>-1</literal> on error or if the channel was disconnected. Returns the position where "
        "playback was terminated as endpos.\n"
        "It sets the following channel variables upon completion:\n"
        "<variable>CPLAYBACKSTATUS</variable>: Contains the status of the attempt as a text string\n"
        "    <value>SUCCESS</value>\n"
        "    <value>USERSTOPPED</value>\n"
        "    <value>REMOTESTOPPED</value>\n"
        "    <value>ERROR</value>\n"
        "<variable>CPLAYBACKOFFSET</variable>: Contains the offset in ms into the file where playback was at "
        "when it stopped. <literal>-1</literal> is end of file.\n"
        "<variable>CPLAYBACKSTOPKEY</variable>: If the playback is stopped by the user this variable "
        "contains the key that was pressed."
    ),
    "DATABASE DEL": (
        "Deletes an entry in the Asterisk database for a given <replaceable>family</replaceable> and "
        "<replaceable>key</replaceable>.\n"
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."
    ),
    "DATABASE DELTREE": (
        "Deletes a <replaceable>family</replaceable> or specific <replaceable>keytree</replaceable> within "
        "a <replaceable>family</replaceable> in the Asterisk database.\n"
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."
    ),
    "DATABASE GET": (
        "Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> and "
        "<replaceable>key</replaceable>.\n"
        "Returns <literal>0</literal> if <replaceable>key</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>key</replaceable> is set and returns the variable in "
        "parenthesis.\n"
        "Example return code: 200 result=1 (testvariable)"
    ),
    "DATABASE PUT": (
        "Adds or updates an entry in the Asterisk database for a given <replaceable>family</replaceable>, "
        "<replaceable>key</replaceable>, and <replaceable>value</replaceable>.\n"
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise."
    ),
    "EXEC": (
        "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n"
        "Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on "
        "failure to find <replaceable>application</replaceable>.\n"
        "<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is explicitly "
        "enabled by setting the <variable>AGIEXECFULL</variable> variable to <literal>yes</literal>."
    ),
    "GET DATA": (
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end."
    ),
    "GET FULL VARIABLE": (
        "Evaluates the given <replaceable>expression</replaceable> against the channel specified by "
        "<replaceable>channelname</replaceable>, or the current channel if <replaceable>channelname</replaceable> "
        "is not provided.\n"
        "Unlike GET VARIABLE, the <replaceable>expression</replaceable> is processed in a manner similar to "
        "dialplan evaluation, allowing complex and built-in variables to be accessed, e.g. "
        "<literal>The time is ${EPOCH}</literal>\n"
        "Returns <literal>0</literal> if no channel matching <replaceable>channelname</replaceable> exists, "
        "<literal>1</literal> otherwise.\n"
        "Example return code: 200 result=1 (The time is 1578493800)"
    ),
    "GET OPTION": "Behaves similar to STREAM FILE but used with a timeout option.",
    "GET VARIABLE": (
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the variable in "
        "parentheses.\n"
        "Example return code: 200 result=1 (testvariable)"
    ),
    "GOSUB": (
        "Cause the channel to execute the specified dialplan subroutine, returning to the dialplan with "
        "execution of a Return()."
    ),
    "HANGUP": "Hangs up the specified channel. If no channel name is given, hangs up the current channel",
    "NOOP": "Does nothing.",
    "RECEIVE CHAR": (
        "Receives a character of text on a channel. Most channels do not support the reception of text. "
        "Returns the decimal value of the character if one is received, or <literal>0</literal> if the "
        "channel does not support text reception. Returns <literal>-1</literal> only on error/hangup."
    ),
    "RECEIVE TEXT": (
        "Receives a string of text on a channel. Most channels do not support the reception of text. "
        "Returns <literal>-1</literal> for failure or <literal>1</literal> for success, and the string in "
        "parenthesis."
    ),
    "RECORD FILE": (
        "Record to a file until a given dtmf digit in the sequence is received. Returns "
        "<literal>-1</literal> on hangup or error.  The format will specify what kind of file will be "
        "recorded. The <replaceable>timeout</replaceable> is the maximum record time in milliseconds, or "
        "<literal>-1</literal> for no <replaceable>timeout</replaceable>. <replaceable>offset "
        "samples</replaceable> is optional, and, if provided, will seek to the offset without exceeding the "
        "end of the file. <replaceable>beep</replaceable> can take any value, and causes Asterisk to play a "
        "beep to the channel that is about to be recorded. <replaceable>silence</replaceable> is the number "
        "of seconds of silence allowed before the function returns despite the lack of dtmf digits or "
        "reaching <replaceable>timeout</replaceable>. <replaceable>silence</replaceable> value must be "
        "preceded by <literal>s=</literal> and is also optional."
    ),
    "SAY ALPHA": (
        "Say a given character string, returning early if any of the given DTMF digits are received on the "
        "channel. Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
        "ASCII numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SAY DATE": (
        "Say a given date, returning early if any of the given DTMF digits are received on the channel. "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SAY DATETIME": (
        "Say a given time, returning early if any of the given DTMF digits are received on the channel. "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SAY DIGITS": (
        "Say a given digit string, returning early if any of the given DTMF digits are received on the "
        "channel. Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
        "ASCII numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SAY NUMBER": (
        "Say a given number, returning early if any of the given DTMF digits are received on the channel.  "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SAY PHONETIC": (
        "Say a given character string with phonetics, returning early if any of the given DTMF digits are "
        "received on the channel. Returns <literal>0</literal> if playback completes without a digit "
        "pressed, the ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on "
        "error/hangup."
    ),
    "SAY TIME": (
        "Say a given time, returning early if any of the given DTMF digits are received on the channel. "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the ASCII "
        "numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
    ),
    "SEND IMAGE": (
        "Sends the given image on a channel. Most channels do not support the transmission of images. "
        "Returns <literal>0</literal> if image is sent, or if the channel does not support image "
        "transmission.  Returns <literal>-1</literal> only on error/hangup. Image names should not include "
        "extensions."
    ),
    "SEND TEXT": (
        "Sends the given text on a channel. Most channels do not support the transmission of text. Returns "
        "<literal>0</literal> if text is sent, or if the channel does not support text transmission. Returns "
        "<literal>-1</literal> only on error/hangup."
    ),
    "SET AUTOHANGUP": (
        "Cause the channel to automatically hangup at <replaceable>time</replaceable> seconds in the future. "
        "Of course it can be hungup before then as well. Setting to <literal>0</literal> will cause the "
        "autohangup feature to be disabled on this channel."
    ),
    "SET CALLERID": "Changes the callerid of the current channel.",
    "SET CONTEXT": "Sets the context for continuation upon exiting the application.",
    "SET EXTENSION": "Changes the extension for continuation upon exiting the application.",
    "SET MUSIC": (
        "Enables/Disables the music on hold generator. If <replaceable>class</replaceable> is not "
        "specified, then the <literal>default</literal> music on hold class will be used. This generator will "
        "be stopped automatically when playing a file.\n"
        "Always returns <literal>0</literal>."
    ),
    "SET PRIORITY": (
        "Changes the priority for continuation upon exiting the application. The priority must be a valid "
        "priority or label."
    ),
    "SET VARIABLE": "Sets a variable to the current channel.",
    "SPEECH ACTIVATE GRAMMAR": "Activates the specified grammar on the speech object.",
    "SPEECH CREATE": "Create a speech object to be used by the other Speech AGI commands.",
    "SPEECH DEACTIVATE GRAMMAR": "Deactivates the specified grammar on the speech object.",
    "SPEECH DESTROY": "Destroy the speech object created by <literal>SPEECH CREATE</literal>.",
    "SPEECH LOAD GRAMMAR": "Loads the specified grammar as the specified name.",
    "SPEECH RECOGNIZE": "Plays back given <replaceable>prompt</replaceable> while listening for speech and dtmf.",
    "SPEECH SET": "Set an engine-specific setting.",
    "SPEECH UNLOAD GRAMMAR": "Unloads the specified grammar.",
    "STREAM FILE": (
        "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
        "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical "
        "value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
        "disconnected. If musiconhold is playing before calling stream file it will be automatically stopped "
        "and will not be restarted after completion.\n"
        "It sets the following channel variables upon completion:\n"
        "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
        "    <value>SUCCESS</value>\n"
        "    <value>FAILED</value>"
    ),
    "TDD MODE": (
        "Enable/Disable TDD transmission/reception on a channel. Returns <literal>1</literal> if successful, "
        "or <literal>0</literal> if channel is not TDD-capable."
    ),
    "VERBOSE": (
        "Sends <replaceable>message</replaceable> to the console via verbose message system. "
        "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>"
    ),
    "WAIT FOR DIGIT": (
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF digit. "
        "Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit is received in "
        "the timeout, or the numerical value of the ascii of the digit if one is received. Use "
        "<literal>-1</literal> for the <replaceable>timeout</replaceable> value if you desire the call to "
        "block indefinitely."
    ),
}

# Asterisk numbers channels per process from 1; start elsewhere so that two
# `ivr call` processes in the same second do not hand out the same uniqueid.
_unique_seq = itertools.count(int.from_bytes(os.urandom(3), "big"))
_local_seq = itertools.count(1)


# --------------------------------------------------------------------------- parsing


def parse_args(line: bytes) -> tuple[list[bytes], bool]:
    """Split a command line exactly like ``parse_args`` (res_agi.c:4158-4219).

    Runs of space/tab separate words; ``"`` toggles quoting (a quote right after
    whitespace starts a word, so ``""`` is an empty word); ``\\`` escapes the next
    byte inside and outside quotes; ``\\r`` is an ordinary byte. Words past the
    127th (command words included) are dropped, except one opened by a quote:
    that path has no MAX_ARGS check, so Asterisk keeps the word and its final
    ``argv[x] = NULL`` lands past ``argv[MAX_ARGS]`` (res_agi.c:4166-4176, 4216).
    The second value tells that the limit was crossed.

    >>> parse_args(b'SET VARIABLE "MY VAR" "value with \\\\"quotes\\\\" and spaces"')
    ([b'SET', b'VARIABLE', b'MY VAR', b'value with "quotes" and spaces'], False)
    >>> parse_args(b"SET VARIABLE Q2 'single quoted'")[0]
    [b'SET', b'VARIABLE', b'Q2', b"'single", b"quoted'"]
    """
    words: list[bytearray] = []
    quoted = escaped = False
    whitespace = True
    overflow = False
    for byte in line:
        if byte == 0x22 and not escaped:  # '"'
            quoted = not quoted
            if quoted and whitespace:
                # No MAX_ARGS check on this path in res_agi.c.
                if len(words) >= MAX_ARGS - 1:
                    overflow = True
                words.append(bytearray())
                whitespace = False
            escaped = False
            continue
        if byte in (0x20, 0x09) and not quoted and not escaped:
            whitespace = True
            continue
        if byte == 0x5C and not escaped:  # '\\'
            escaped = True
            continue
        if whitespace:
            if len(words) >= MAX_ARGS - 1:
                overflow = True  # "Too many arguments, truncating": the byte is dropped
                continue
            words.append(bytearray())
            whitespace = False
        words[-1].append(byte)
        escaped = False
    return [bytes(word) for word in words], overflow


def _find_command(argv: Sequence[bytes]) -> tuple[str, bool] | None:
    """``find_command(argv, 0)``: case-insensitive on the command words (ASCII
    only, like strcasecmp); extra words are the command's arguments."""
    for words, dead in _COMMANDS:
        if len(argv) >= len(words) and all(argv[i].lower() == words[i] for i in range(len(words))):
            return " ".join(word.decode().upper() for word in words), dead
    return None


_SCANF_INT = re.compile(rb"^[ \t\n\v\f\r]*([+-]?[0-9]+)")
_SCANF_FLOAT = re.compile(rb"^[ \t\n\v\f\r]*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def _scan_int(text: bytes) -> int | None:
    """``sscanf(text, "%30d")``: None when no integer starts the text."""
    match = _SCANF_INT.match(text[:30] if len(text) > 30 else text)
    return int(match.group(1)) if match else None


def _atoi(text: bytes) -> int:
    return _scan_int(text) or 0


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _wire(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


# --------------------------------------------------------------------------- caller script

_GROUP = re.compile(r"^(?P<body>.*?)(?:@(?P<at>\d+(?:\.\d+)?))?$", re.DOTALL)
_DIGITS = re.compile(r"^[0-9*#A-Da-d]*$")


@dataclass(frozen=True, slots=True)
class KeyGroup:
    """One step of the scripted caller (see :func:`parse_key_group`)."""

    kind: str  # "digits", "hangup", "hangup_idle", "record"
    digits: str = ""
    at: float | None = None
    seconds: float = 0.0
    then: str = "#"  # record: digits to press, "h" (hang up) or "s" (go silent)
    raw: str = ""
    exhausted: bool = False  # the script ran out: the caller gives up


#: The longest a scripted recording may speak (the IVR cuts recordings far sooner).
MAX_RECORD_SECONDS: Final = 3600.0
DIAL_STATUSES: Final = ("ANSWER", "NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL")


def parse_dial_outcome(target: str, spec: str) -> tuple[str, int]:
    """A scripted Dial outcome ("NOANSWER", "ANSWER:5" = answered, 5 s of talk)
    as (status, seconds of talk)."""
    status, _, talk = spec.upper().partition(":")
    if status not in DIAL_STATUSES or (talk and not (talk.isascii() and talk.isdigit())):
        raise ValueError(
            f"dial outcome for {target}: {spec!r} is not ANSWER[:s], NOANSWER, BUSY, CONGESTION or CHANUNAVAIL"
        )
    return status, int(talk) if talk else 2


def parse_key_group(text: str) -> KeyGroup:
    """Parse one key group of a caller script.

    >>> parse_key_group("05122026#")
    KeyGroup(kind='digits', digits='05122026#', at=None, seconds=0.0, then='#', raw='05122026#', exhausted=False)
    >>> parse_key_group("h@2.5").at
    2.5
    >>> parse_key_group("rec:5:h").then
    'h'
    """
    if not isinstance(text, str):
        raise TypeError(f"key group must be a string, not {type(text).__name__}")
    if text == "h!":
        return KeyGroup("hangup_idle", raw=text)
    if text.startswith("rec:"):
        parts = text[4:].split(":")
        if len(parts) > 2 or not parts[0]:
            raise ValueError(f"bad record group {text!r}: use rec:<seconds>[:h|:s|:<digits>]")
        try:
            seconds = float(parts[0])
        except ValueError as exc:
            raise ValueError(f"bad record length in {text!r}") from exc
        if not 0 <= seconds <= MAX_RECORD_SECONDS:  # NaN fails this too
            raise ValueError(f"bad record length in {text!r}: 0 to {MAX_RECORD_SECONDS:.0f} seconds")
        then = parts[1] if len(parts) == 2 else "#"
        if then not in ("h", "s") and not (then and _DIGITS.match(then)):
            raise ValueError(f"bad record ending in {text!r}: use h, s or digits")
        return KeyGroup("record", seconds=seconds, then=then.upper() if then not in ("h", "s") else then, raw=text)
    match = _GROUP.match(text)
    assert match is not None
    body, at = match.group("body"), match.group("at")
    when = float(at) if at is not None else None
    if body == "h":
        return KeyGroup("hangup", at=when, raw=text)
    if not _DIGITS.match(body):
        raise ValueError(f"bad key group {text!r}: digits 0-9 * # A-D, 'h', 'h!' or 'rec:<s>'")
    return KeyGroup("digits", digits=body.upper(), at=when, raw=text)


@dataclass(frozen=True, slots=True)
class PromptFile:
    """A file the IVR played, and what it says (from ``<file>.txt``)."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the caller is being asked, for an interactive ``key_source``."""

    command: str  # "GET DATA", "STREAM FILE", ...
    files: tuple[PromptFile, ...] = ()
    escape_digits: str = ""  # "" for GET DATA: any digit, '#' ends it
    max_digits: int | None = None
    timeout_ms: int | None = None

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.files)

    def __str__(self) -> str:
        hint = f"{self.command}"
        if self.max_digits is not None:
            hint += f", up to {self.max_digits} digits"
        if self.escape_digits:
            hint += f", keys {self.escape_digits}"
        return f"[{hint}] {self.text}".rstrip()


class _Caller:
    def __init__(self, keys: Sequence[str] | None, key_source: Callable[[Prompt], Awaitable[str]] | None) -> None:
        self.groups: deque[KeyGroup] = deque(parse_key_group(k) for k in (keys or ()))
        self.key_source = key_source
        self.typeahead = ""

    def pop_idle_hangup(self) -> bool:
        if self.groups and self.groups[0].kind == "hangup_idle":
            self.groups.popleft()
            return True
        return False

    def pop_hangup(self) -> KeyGroup | None:
        if self.groups and self.groups[0].kind == "hangup":
            return self.groups.popleft()
        return None

    def pop_record(self) -> KeyGroup | None:
        if self.groups and self.groups[0].kind == "record":
            return self.groups.popleft()
        return None

    async def next_group(self, prompt: Prompt) -> KeyGroup:
        if self.typeahead:
            digits, self.typeahead = self.typeahead, ""
            return KeyGroup("digits", digits=digits, at=0.0, raw=f"(type-ahead) {digits}")
        if self.groups:
            group = self.groups.popleft()
            if group.kind == "hangup_idle":
                return KeyGroup("hangup", at=0.0, raw=group.raw)
            return group
        if self.key_source is not None:
            text = await self.key_source(prompt)
            return parse_key_group(text)
        return KeyGroup("hangup", at=0.0, raw="(script ended)", exhausted=True)


def stdin_key_source(stream: TextIO | None = None, out: TextIO | None = None) -> Callable[[Prompt], Awaitable[str]]:
    """A ``key_source`` for a person at a terminal: shows the prompt, reads one
    key group per line (EOF hangs up)."""

    async def ask(prompt: Prompt) -> str:
        source = stream or sys.stdin
        sink = out or sys.stdout
        sink.write(f"{prompt}\nkeys> ")
        sink.flush()
        line = await asyncio.to_thread(source.readline)
        return line.strip() if line else "h"

    return ask


# --------------------------------------------------------------------------- audio


@dataclass(frozen=True, slots=True)
class AudioProblem:
    """A file the IVR asked Asterisk to play or record that is not as it must be."""

    command: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.command} {self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _Sound:
    name: str
    file: str  # the file Asterisk would open, or "stock:<name>"
    rate: int
    samples: int  # Asterisk's tell() at the end: (size - 44) / 2 for WAV, size / 2 for raw
    text: str

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


def _check_wav(data: bytes, rate: int) -> str | None:
    """format_wav.c ``check_header``: None when Asterisk can play it at ``rate``."""
    if len(data) < 12:
        return "Read failed (type)"
    if data[:4] != b"RIFF":
        return "Does not begin with RIFF"
    if data[8:12] != b"WAVE":
        return "Does not contain WAVE"
    pos = 12
    while True:
        if pos + 8 > len(data):
            return "Read failed (block header format)"
        # unsigned here: a negative size would make the C loop seek backwards forever
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        pos += 8
        if chunk == b"fmt ":
            if size < 16 or pos + 16 > len(data):
                return f"Unexpected header size {size}"
            fmt, channels, freq, _, block = struct.unpack("<HHIIH", data[pos : pos + 14])
            if fmt != 1:
                return f"Not a supported wav file format ({fmt})"
            if channels != 1:
                return f"Not in mono {channels}"
            if freq not in (8000, 16000) or freq != rate:
                return f"Unexpected frequency mismatch {freq} (expecting {rate})"
            if block != 2:
                return f"Can only handle 16bits per sample: {block}"
            pos += size
            continue
        if chunk == b"data":
            return None
        pos += size


def wav_bytes(samples: Sequence[int] | bytes, rate: int = 8000) -> bytes:
    """A 44-byte-header PCM WAV (mono, 16-bit) around ``samples``."""
    pcm = bytes(samples) if isinstance(samples, bytes | bytearray) else struct.pack(f"<{len(samples)}h", *samples)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)  # PCM, mono, rate, bytes/s, align, bits
    header = struct.pack("<4sI4s4sI", b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16) + fmt
    header += struct.pack("<4sI", b"data", len(pcm))
    return header + pcm


def _voice_pcm(count: int, rate: int, silent_tail: int = 0) -> bytes:
    """Something that sounds like a caller: a quiet 300 Hz tone, then silence."""
    voiced = max(0, count - silent_tail)
    cycle = [int(3000 * math.sin(2 * math.pi * 300 * n / rate)) for n in range(rate // 100)]
    tone = struct.pack(f"<{len(cycle)}h", *cycle)
    body = (tone * (voiced // len(cycle) + 1))[: voiced * 2]
    return body + b"\0\0" * (count - voiced)


# --------------------------------------------------------------------------- log


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened in the call; ``at`` is virtual seconds since connect."""

    at: float

    def line(self) -> tuple[str, str]:
        return "", ""


@dataclass(frozen=True, kw_only=True)
class PromptPlayed(Event):
    command: str
    path: str
    text: str
    seconds: float
    interrupted: bool = False
    found: bool = True

    def line(self) -> tuple[str, str]:
        if not self.found:
            return "IVR", f"plays {self.path}  [MISSING: Asterisk answered -1]"
        cut = "  [interrupted]" if self.interrupted else ""
        return "IVR", f"plays {self.path}  \u00ab{self.text}\u00bb{cut}"


@dataclass(frozen=True, kw_only=True)
class Said(Event):
    command: str
    value: str

    def line(self) -> tuple[str, str]:
        return "IVR", f"{self.command.lower()} {self.value}"


@dataclass(frozen=True, kw_only=True)
class KeysPressed(Event):
    command: str
    keys: str
    lost: bool = False

    def line(self) -> tuple[str, str]:
        what = "presses (lost: the prompt was not listening)" if self.lost else "presses"
        return "CALLER", f"{what} {self.keys}"


@dataclass(frozen=True, kw_only=True)
class DigitsReturned(Event):
    command: str
    digits: str
    timed_out: bool = False

    def line(self) -> tuple[str, str]:
        return "IVR", f"got {self.digits!r}{' (timeout)' if self.timed_out else ''} from {self.command}"


@dataclass(frozen=True, kw_only=True)
class Recorded(Event):
    path: str
    seconds: float
    ended_by: str  # "dtmf", "timeout", "silence", "hangup"

    def line(self) -> tuple[str, str]:
        return "CALLER", f"records {self.seconds:.1f} s into {self.path} (ended by {self.ended_by})"


@dataclass(frozen=True, slots=True)
class DialAttempt:
    """One ``EXEC Dial``: ``targets`` as split on ``&``, ``status`` as DIALSTATUS."""

    raw: str
    targets: tuple[str, ...]
    timeout: str
    options: str
    status: str
    answered_seconds: int = 0


@dataclass(frozen=True, kw_only=True)
class Dialled(Event):
    attempt: DialAttempt

    def line(self) -> tuple[str, str]:
        return "IVR", f"dials {self.attempt.raw} -> {self.attempt.status}"


@dataclass(frozen=True, kw_only=True)
class VariableSet(Event):
    name: str
    value: str

    def line(self) -> tuple[str, str]:
        return "IVR", f"sets {self.name} = {self.value!r}"


@dataclass(frozen=True, kw_only=True)
class HungUp(Event):
    by: str  # "caller" or "ivr"
    during: str | None = None

    def line(self) -> tuple[str, str]:
        where = f" during {self.during}" if self.during else " while the IVR was idle"
        return ("CALLER" if self.by == "caller" else "IVR"), f"hangs up{where if self.by == 'caller' else ''}"


@dataclass(frozen=True, kw_only=True)
class ErrorReply(Event):
    command: str
    reply: str

    def line(self) -> tuple[str, str]:
        return "AST", f"{self.reply} <- {self.command!r}"


@dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    agi_status: str
    result: str | None

    def line(self) -> tuple[str, str]:
        return "AST", f"AGI ended: AGISTATUS={self.agi_status} IVR_RESULT={self.result}"


@dataclass
class CallRecord:
    """Everything one simulated call saw; ``render()`` is the ``ivr call`` output."""

    uniqueid: str
    channel: str
    request: str
    caller: str
    events: list[Event] = field(default_factory=list)
    #: What the server set (SET VARIABLE / EXEC Set), last value wins.
    variables: dict[str, str] = field(default_factory=dict)
    audio_problems: list[AudioProblem] = field(default_factory=list)
    #: Raw command lines as Asterisk read them (``b'ANSWER\\n'``).
    commands: list[bytes] = field(default_factory=list)
    #: Raw bytes Asterisk sent after the environment, in order.
    replies: list[bytes] = field(default_factory=list)
    dial_attempts: list[DialAttempt] = field(default_factory=list)
    #: Script mismatches and things the simulator does not model.
    warnings: list[str] = field(default_factory=list)
    hung_up: bool = False
    hangup_by: str | None = None
    #: What the dialplan would see in ``AGISTATUS`` (SUCCESS / FAILURE / HANGUP).
    agi_status: str = "SUCCESS"
    duration: float = 0.0

    @property
    def result(self) -> str | None:
        return self.variables.get("IVR_RESULT")

    @property
    def prompts(self) -> list[PromptPlayed]:
        return [e for e in self.events if isinstance(e, PromptPlayed)]

    @property
    def spoken(self) -> list[str]:
        """The texts the caller heard, in order (prompts and SAY commands)."""
        spoken: list[str] = []
        for event in self.events:
            if isinstance(event, PromptPlayed) and event.found:
                spoken.append(event.text)
            elif isinstance(event, Said):
                spoken.append(event.value)
        return spoken

    def render(self) -> str:
        lines = [f"Call {self.uniqueid}  {self.channel}  {self.request}  caller {self.caller}"]
        for event in self.events:
            who, text = event.line()
            lines.append(f"{event.at:7.1f}s  {who:<6}  {text}")
        problems = "; ".join(str(p) for p in self.audio_problems) or "none"
        lines.append(
            f"Result: IVR_RESULT={self.result}  AGISTATUS={self.agi_status}  "
            f"hangup by {self.hangup_by or 'nobody'}  {self.duration:.1f} s  audio problems: {problems}"
        )
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


class CallTimeout(TimeoutError):
    """The call did not end within ``timeout`` seconds; ``record`` holds what happened."""

    def __init__(self, message: str, record: CallRecord) -> None:
        super().__init__(message)
        self.record = record


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class CallSetup:
    """What the dialplan and the originate decide before ``AGI()`` runs."""

    script: str = "main"
    options: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    #: host:port as written in the dialplan's ``agi://`` URL.
    request_host: str = "127.0.0.1:4573"
    caller_id: str | None = None
    caller_name: str | None = None
    #: 0 allowed, 67 unavailable (the default without caller ID), 35 withheld.
    presentation: int | None = None
    #: CONNECTEDLINE (name, number): an AMI originate with CallerID sets it.
    connected_line: tuple[str, str] | None = None
    channel: str | None = None
    uniqueid: str | None = None
    threadid: int | None = None
    context: str = "ivr-in"
    extension: str | None = None
    priority: int = 4
    language: str = "en"
    dnid: str = "unknown"
    rdnis: str = "unknown"
    accountcode: str = ""
    channel_vars: Mapping[str, str] = field(default_factory=dict)
    exit_on_hangup: bool = False
    sighup: bool = True


class _ShowUsage(Exception):
    pass


@dataclass
class _Outcome:
    lines: list[bytes]
    failed: bool = False


class SimulatedAsterisk:
    """One channel running ``AGI()``: the protocol engine, without any socket.

    Tests can drive it command by command::

        sim = SimulatedAsterisk(CallSetup(script="menu"), keys=["1"])
        sim.environment()                                 # the env block, as bytes
        await sim.execute(b'WAIT FOR DIGIT 5000\\n')      # b'200 result=49\\n'
        sim.idle()                                        # b'' (or b'HANGUP\\n' for "h!")
        sim.end_of_session()                              # b'HANGUP\\n' when the server half-closes

    ``run(host, port)`` does the same over TCP.
    """

    def __init__(
        self,
        setup: CallSetup | None = None,
        *,
        keys: Sequence[str] | None = None,
        key_source: Callable[[Prompt], Awaitable[str]] | None = None,
        dial_outcomes: Mapping[str, str] | None = None,
        sounds_dir: str | Path | None = None,
        stock_sounds: bool = True,
        astdb: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.setup = setup = setup or CallSetup()
        self.caller = _Caller(keys, key_source)
        self.dial_outcomes = dict(dial_outcomes or {})
        self.sounds_dir = Path(sounds_dir) if sounds_dir is not None else None
        self.stock_sounds = stock_sounds
        self.astdb = astdb if astdb is not None else {}
        seq = next(_local_seq)
        self.channel = setup.channel or f"Local/{setup.script}@{setup.context}-{seq:08x};2"
        found = re.search(r"-([0-9a-f]{8});\d$", self.channel)
        self._local_counter = itertools.count(int(found.group(1), 16) + 1 if found else next(_local_seq))
        self.uniqueid = setup.uniqueid or f"{int(time.time())}.{next(_unique_seq)}"
        self.threadid = setup.threadid or 140071603037888 + 4096 * seq
        self.language = setup.language
        self.caller_num = setup.caller_id
        self.caller_name = setup.caller_name
        if setup.presentation is not None:
            self.presentation = setup.presentation
        else:
            self.presentation = 0 if setup.caller_id else 0x43
        self.connected = setup.connected_line
        self.vars: dict[str, str] = dict(setup.channel_vars)
        self.hangupcause = "0"
        self.dead = False
        self.clock = 0.0
        self._needhup: tuple[str, str | None] | None = None  # (by, during)
        self._hung_up_during = False
        self._finished = False
        self._final_sent = False
        query = urlencode(dict(setup.options)) if setup.options else ""
        self.script_path = setup.script + (f"?{query}" if query else "")
        self.record = CallRecord(
            uniqueid=self.uniqueid,
            channel=self.channel,
            request=f"agi://{setup.request_host}/{self.script_path}",
            caller=self._caller_text(),
        )

    # ----------------------------------------------------------- session edges

    def environment(self) -> bytes:
        """The block ``launch_netscript`` + ``setup_env`` send, ending in ``\\n``."""
        s = self.setup
        lines = ["agi_network: yes"]
        if self.script_path:
            lines.append(f"agi_network_script: {self.script_path}")
        lines += [
            f"agi_request: {self.record.request}",
            f"agi_channel: {self.channel}",
            f"agi_language: {self.language}",
            f"agi_type: {self.channel.split('/', 1)[0]}",
            f"agi_uniqueid: {self.uniqueid}",
            f"agi_version: {ASTERISK_VERSION}",
            f"agi_callerid: {self.caller_num if self.caller_num is not None else 'unknown'}",
            f"agi_calleridname: {self.caller_name if self.caller_name is not None else 'unknown'}",
            f"agi_callingpres: {self.presentation}",
            "agi_callingani2: 0",
            "agi_callington: 0",
            "agi_callingtns: 0",
            f"agi_dnid: {s.dnid}",
            f"agi_rdnis: {s.rdnis}",
            f"agi_context: {s.context}",
            f"agi_extension: {s.extension if s.extension is not None else s.script}",
            f"agi_priority: {s.priority}",
            "agi_enhanced: 0.0",
            f"agi_accountcode: {s.accountcode}",
            f"agi_threadid: {self.threadid}",
        ]
        lines += [f"agi_arg_{n}: {arg}" for n, arg in enumerate(s.args, start=1)]
        return _wire("".join(f"{line}\n" for line in lines) + "\n")

    @property
    def finished(self) -> bool:
        """Asterisk has ended the AGI on its own (exit on hangup, ``failure``)."""
        return self._finished

    def idle(self) -> bytes:
        """What Asterisk sends unprompted while the server is idle: ``HANGUP``
        when the script says the caller hangs up now (``h!``)."""
        if self._finished or self.dead or not self.caller.pop_idle_hangup():
            return b""
        self._needhup = ("caller", None)
        return self._hangup_lines()

    def end_of_session(self) -> bytes:
        """The server half-closed (or closed): ``run_agi`` leaves its loop and
        sends its last ``HANGUP`` unless ``AGISIGHUP=no``."""
        self._finished = True
        out = b""
        if not self._final_sent:
            self._final_sent = True
            if self.caller.groups:
                left = ", ".join(repr(g.raw) for g in self.caller.groups)
                self._warn(f"the call ended before the caller script did: {left} not used")
            if self.setup.sighup:
                out = HANGUP
            self._end_event()
        return out

    def _end_event(self) -> None:
        self.record.duration = self.clock
        self._log(SessionEnded(at=self.clock, agi_status=self.record.agi_status, result=self.record.result))

    # ----------------------------------------------------------- commands

    async def execute(self, raw: bytes) -> bytes:
        """Run one command line as Asterisk read it (with or without its ``\\n``)
        and return everything Asterisk writes before it reads again."""
        self.record.commands.append(raw)
        if self._finished:
            return b""
        if raw[:7].lower() == b"failure":  # res_agi.c:4441: stop at once, no reply
            self.record.agi_status = "FAILURE"
            self.record.warnings.append("the server sent 'failure': AGISTATUS=FAILURE")
            return self.end_of_session()
        line = raw[:-1] if raw.endswith(b"\n") else raw
        argv, overflow = parse_args(line)
        if overflow:
            self.record.warnings.append(
                f"{len(argv)} words in one command: res_agi.c keeps 127; a quoted 128th overruns its argv[]"
            )
        found = _find_command(argv)
        if found is None:
            outcome = _Outcome([REPLY_510])
            self._log(ErrorReply(at=self.clock, command=_text(line), reply="510 Invalid or unknown command"))
        elif self.dead and not found[1]:
            outcome = _Outcome([REPLY_511])
            self._log(ErrorReply(at=self.clock, command=_text(line), reply="511 dead channel"))
        else:
            name = found[0]
            self._hung_up_during = False
            try:
                outcome = await getattr(self, "_cmd_" + name.lower().replace(" ", "_"))(argv, name)
            except _ShowUsage:
                usage = _USAGE.get(name, "")
                lines = [USAGE_HEAD, _wire(usage) + b"\n", USAGE_TAIL] if usage else [USAGE_UNAVAILABLE]
                outcome = _Outcome(lines)
                self._log(ErrorReply(at=self.clock, command=_text(line), reply="520 usage"))
            # run_agi: a failed command counts unless the channel hung up during it
            if outcome.failed and (self.dead or not self._hung_up_during):
                self.record.agi_status = "FAILURE"
        out = b"".join(outcome.lines)
        if self._needhup is not None and not self.dead:
            out += self._hangup_lines()
        self.record.replies.append(out)
        return out

    def _hangup_lines(self) -> bytes:
        """``run_agi`` at the top of its loop after ``ast_read()`` gave NULL."""
        assert self._needhup is not None
        by, during = self._needhup
        self._needhup = None
        self.dead = True
        self.hangupcause = "16"
        self.record.hung_up = True
        self.record.hangup_by = by
        if self.record.agi_status == "SUCCESS":
            self.record.agi_status = "HANGUP"
        self._log(HungUp(at=self.clock, by=by, during=during))
        out = HANGUP if self.setup.sighup else b""
        if self.setup.exit_on_hangup:
            out += self.end_of_session()
        return out

    def _log(self, event: Event) -> None:
        self.record.events.append(event)

    def _warn(self, text: str) -> None:
        if text not in self.record.warnings:  # once per call, however often it happens
            self.record.warnings.append(text)

    # ----------------------------------------------------------- caller helpers

    async def _caller_action(self, command: str, natural_end: float, prompt: Prompt | None = None) -> KeyGroup:
        """What the caller does during a command that lasts ``natural_end`` seconds
        when nobody presses anything: a ``hangup`` group (``at`` inside the
        command), or a ``digits``/``record`` group (digits may be empty).

        Every caller of this helper is a command that plays or waits: a scripted
        ``h`` at the head of the script is taken here first; otherwise a
        DTMF-accepting command (one with a ``prompt``) takes the next key group.
        A hangup that would land after the command's natural end lets the command
        finish with a silent caller and sends ``HANGUP`` right after the reply.
        """
        group = self.caller.pop_hangup() if not self.dead else None
        if group is None and prompt is not None:
            group = await self.caller.next_group(prompt)
            if group.exhausted:
                self._warn(f"the caller script ran out at {command}: the caller hangs up")
        if group is None:
            return KeyGroup("digits")
        if group.kind == "hangup":
            at = group.at if group.at is not None else min(KEY_DELAY, natural_end / 2)
            self._needhup = ("caller", command)
            if at < natural_end:
                self._hung_up_during = True
                return KeyGroup("hangup", at=at, raw=group.raw)
            return KeyGroup("digits", raw=group.raw)
        if group.kind == "record" and command != "RECORD FILE":
            self._warn(f"record group {group.raw!r} met {command}: the caller presses nothing")
            return KeyGroup("digits", raw=group.raw)
        return group

    def _hangs_up_during(self, command: str) -> None:
        self._needhup = ("caller", command)
        self._hung_up_during = True

    def _lose_typeahead(self, command: str) -> None:
        if self.caller.typeahead:
            self._log(KeysPressed(at=self.clock, command=command, keys=self.caller.typeahead, lost=True))
            self.caller.typeahead = ""

    # ----------------------------------------------------------- sounds

    def _open_sound(self, name: str, command: str) -> _Sound | None:
        """``ast_openstream``: the file Asterisk would play for ``name``, or None
        (a missing or unplayable file). Every violation goes to audio_problems."""

        def problem(reason: str) -> None:
            self.record.audio_problems.append(AudioProblem(command, name, reason))

        if not name:
            problem("empty file name")
            return None
        base_name = name.rsplit("/", 1)[-1]
        if "." in base_name and base_name.rsplit(".", 1)[1].lower() in _AUDIO_EXTENSIONS:
            problem("passed with its extension: Asterisk adds its own and finds nothing (agi-wavrate.txt)")
        if name.startswith("/"):
            bases = [Path(name)]
        else:
            bases = []
            if self.sounds_dir is not None:
                for lang in dict.fromkeys((self.language, "en")):
                    bases.append(self.sounds_dir / lang / name)
                bases.append(self.sounds_dir / name)
        for base in bases:
            sound = self._probe(base, name, problem)
            if sound is not None:
                return sound
        if not name.startswith("/") and self.stock_sounds and name in STOCK_SOUNDS:
            samples, text = STOCK_SOUNDS[name]
            return _Sound(name, f"stock:{name}", 8000, samples, text)
        others = sorted(
            {p.name for base in bases if base.parent.is_dir() for p in base.parent.glob(glob.escape(base.name) + ".*")}
        )
        others = [o for o in others if not o.endswith(".txt")]
        hint = f" (found only {', '.join(others)})" if others else ""
        problem(f"File {name} does not exist in any format Asterisk plays{hint}")
        return None

    def _probe(self, base: Path, name: str, problem: Callable[[str], None]) -> _Sound | None:
        text_file = Path(f"{base}.txt")
        found: _Sound | None = None
        for ext, rate, kind in (
            ("wav", 8000, "wav"),
            ("sln", 8000, "raw"),
            ("slin", 8000, "raw"),
            ("raw", 8000, "raw"),
            ("wav16", 16000, "wav"),
            ("sln16", 16000, "raw"),
        ):
            path = Path(f"{base}.{ext}")
            try:
                data = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            except OSError as exc:
                problem(f"{path}: cannot read ({exc})")
                continue
            if kind == "wav":
                error = _check_wav(data, rate)
                if error is not None:
                    problem(f"{path.name}: {error} (Asterisk refuses it: 8000 Hz mono 16-bit PCM only)")
                    continue
                samples = max(0, (len(data) - 44) // 2)
            else:
                samples = len(data) // 2
            if rate != 8000:
                problem(f"{path.name}: 16 kHz; Asterisk plays it but the IVR must ship 8 kHz .wav")
            found = _Sound(name, str(path), rate, samples, "")
            break
        if found is None:
            return None
        try:
            text = text_file.read_text("utf-8", errors="replace").strip()
        except OSError:
            text = base.name
        return _Sound(found.name, found.file, found.rate, found.samples, text or base.name)

    def _played(
        self, command: str, sound: _Sound | None, name: str, seconds: float, *, interrupted: bool = False
    ) -> None:
        if sound is None:
            self._log(PromptPlayed(at=self.clock, command=command, path=name, text="", seconds=0.0, found=False))
        else:
            self._log(
                PromptPlayed(
                    at=self.clock, command=command, path=name, text=sound.text, seconds=seconds, interrupted=interrupted
                )
            )
        self.clock += seconds

    # ----------------------------------------------------------- variables

    def _caller_text(self) -> str:
        if self.caller_num is None and self.caller_name is None:
            return "unknown"
        return f'"{self.caller_name or ""}" <{self.caller_num or ""}>'

    def _read_function(self, expr: str) -> str | None:
        match = re.fullmatch(r"([A-Za-z_0-9]+)\((.*)\)", expr, re.DOTALL)
        if not match:
            return None
        func, arg = match.groups()
        if func == "CALLERID":
            num, name = self.caller_num or "", self.caller_name or ""
            values = {
                "num": num,
                "number": num,
                "name": name,
                "all": f'"{name}" <{num}>',
                "pres": _PRESENTATION_NAMES.get(self.presentation, "unknown"),
                "num-pres": _PRESENTATION_NAMES.get(self.presentation, "unknown"),
                "name-pres": _PRESENTATION_NAMES.get(self.presentation, "unknown"),
            }
            return values.get(arg)
        if func == "CONNECTEDLINE":
            name, num = self.connected or ("", "")
            return {"num": num, "number": num, "name": name, "all": f'"{name}" <{num}>'}.get(arg)
        if func == "CHANNEL":
            return {
                "language": self.language,
                "name": self.channel,
                "uniqueid": self.uniqueid,
                "channeltype": self.channel.split("/", 1)[0],
                "state": "Up",
                "context": self.setup.context,
            }.get(arg)
        if func == "DB":
            family, _, key = arg.partition("/")
            return self.astdb.get((family, key), "")
        if func == "LEN":
            return str(len(_wire(arg)))
        self._warn(f"dialplan function {func}() is not simulated: read as unset")
        return None

    def _read_variable(self, name: str) -> str | None:
        if name.endswith(")"):
            return self._read_function(name)
        builtins = {
            "CHANNEL": self.channel,
            "UNIQUEID": self.uniqueid,
            "HANGUPCAUSE": self.hangupcause,
            "CONTEXT": self.setup.context,
            "EXTEN": self.setup.extension or self.setup.script,
            "PRIORITY": str(self.setup.priority),
            "EPOCH": str(int(time.time())),
        }
        if name in builtins:
            return builtins[name]
        return self.vars.get(name)

    def _expand(self, text: str) -> str:
        """``ast_str_substitute_variables`` for ``${...}``, nested and with
        ``${VAR:offset:length}``; ``$[...]`` expressions are left as they are."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 0, i + 2
                while j < len(text):
                    if text.startswith("${", j):
                        depth += 1
                        j += 2
                        continue
                    if text[j] == "}":
                        if depth == 0:
                            break
                        depth -= 1
                    j += 1
                if j >= len(text):
                    out.append(text[i:])
                    break
                out.append(self._evaluate(self._expand(text[i + 2 : j])))
                i = j + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _evaluate(self, expr: str) -> str:
        """One ``${...}``: a variable or ``FUNC(args)``, then an optional ``:offset[:length]``."""
        close = expr.rfind(")")
        if close != -1:
            head, spec = expr[: close + 1], expr[close + 1 :]
        else:
            head, sep, rest = expr.partition(":")
            spec = sep + rest
        value = self._read_variable(head) or ""
        if spec.startswith(":"):
            parts = spec[1:].split(":")
            try:
                offset = int(parts[0] or 0)
                length = int(parts[1]) if len(parts) > 1 and parts[1] else None
            except ValueError:
                return value
            value = value[offset:]
            if length is not None:
                value = value[:length]
        return value

    def _set_variable(self, name: str, value: str) -> None:
        self.record.variables[name] = value
        self._log(VariableSet(at=self.clock, name=name, value=value))
        if name.endswith(")"):
            match = re.fullmatch(r"([A-Za-z_0-9]+)\((.*)\)", name, re.DOTALL)
            func, arg = match.groups() if match else ("", "")
            if func == "CHANNEL" and arg == "language":
                self.language = value
            elif func == "CALLERID" and arg in ("num", "number"):
                self.caller_num = value
            elif func == "CALLERID" and arg == "name":
                self.caller_name = value
            elif func == "CALLERID" and arg == "all":
                found = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', value)
                self.caller_name, self.caller_num = (found.group(1), found.group(2)) if found else (value, "")
            elif func == "DB":
                family, _, key = arg.partition("/")
                self.astdb[(family, key)] = value
            else:
                self._warn(f"SET VARIABLE {name}: dialplan function not simulated")
            return
        self.vars[name] = value

    def _set_quietly(self, **values: str) -> None:
        self.vars.update(values)

    # ----------------------------------------------------------- command handlers
    # Each one mirrors the res_agi.c handler of the same name: the argument checks
    # that lead to RESULT_SHOWUSAGE (-> 520) and the exact reply formats.

    async def _cmd_answer(self, argv: list[bytes], name: str) -> _Outcome:
        return _Outcome([b"200 result=0\n"])

    async def _cmd_asyncagi_break(self, argv: list[bytes], name: str) -> _Outcome:
        return _Outcome([b"200 result=0\n"])

    async def _cmd_noop(self, argv: list[bytes], name: str) -> _Outcome:
        return _Outcome([b"200 result=0\n"])

    async def _cmd_verbose(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 2:
            raise _ShowUsage
        return _Outcome([b"200 result=1\n"])

    async def _cmd_channel_status(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) == 2:
            return _Outcome([b"200 result=6\n"])
        if len(argv) == 3:
            return _Outcome([b"200 result=6\n" if _text(argv[2]) == self.channel else b"200 result=-1\n"])
        raise _ShowUsage

    async def _cmd_hangup(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) > 2:
            raise _ShowUsage
        if len(argv) == 2 and _text(argv[1]) != self.channel:
            return _Outcome([b"200 result=-1\n"])
        self._needhup = ("ivr", None)
        return _Outcome([b"200 result=1\n"])

    async def _cmd_set_variable(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        self._set_variable(_text(argv[2]), _text(argv[3]))
        return _Outcome([b"200 result=1\n"])

    async def _cmd_get_variable(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        value = self._read_variable(_text(argv[2])) if argv[2] else None
        if value is None:
            return _Outcome([b"200 result=0\n"])
        return _Outcome([b"200 result=1 (" + _wire(value)[:1023] + b")\n"])  # char tempstr[1024]

    async def _cmd_get_full_variable(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) not in (4, 5):
            raise _ShowUsage
        if len(argv) == 5 and _text(argv[4]) != self.channel:
            return _Outcome([b"200 result=0\n"])
        return _Outcome([b"200 result=1 (" + _wire(self._expand(_text(argv[3]))) + b")\n"])

    async def _cmd_set_autohangup(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3 or not _SCANF_FLOAT.match(argv[2]):
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_set_callerid(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) > 2:
            value = _text(argv[2])
            found = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', value)
            if found:
                self.caller_name, self.caller_num = found.group(1), found.group(2)
            else:
                self.caller_num = re.sub(r"[^0-9*#+]", "", value)
        return _Outcome([b"200 result=1\n"])

    async def _cmd_set_context(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    _cmd_set_extension = _cmd_set_context

    async def _cmd_set_priority(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3 or _scan_int(argv[2]) is None:  # no labels in the simulator
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_set_music(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 3:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_tdd_mode(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])  # a Local channel is not TDD-capable

    async def _cmd_send_text(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    _cmd_send_image = _cmd_send_text

    async def _cmd_receive_char(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        return _Outcome([b"200 result=0 (timeout)\n"])

    async def _cmd_receive_text(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 3:
            raise _ShowUsage
        return _Outcome([b"200 result=-1\n"])

    async def _cmd_database_get(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        value = self.astdb.get((_text(argv[2]), _text(argv[3])))
        return _Outcome([b"200 result=0\n" if value is None else b"200 result=1 (" + _wire(value) + b")\n"])

    async def _cmd_database_put(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 5:
            raise _ShowUsage
        self.astdb[(_text(argv[2]), _text(argv[3]))] = _text(argv[4])
        return _Outcome([b"200 result=1\n"])

    async def _cmd_database_del(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        self.astdb.pop((_text(argv[2]), _text(argv[3])), None)
        return _Outcome([b"200 result=1\n"])  # agi-vars.txt: 1 even when the key was gone

    async def _cmd_database_deltree(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) not in (3, 4):
            raise _ShowUsage
        family = _text(argv[2])
        prefix = _text(argv[3]) if len(argv) == 4 else None
        doomed = [k for k in self.astdb if k[0] == family and (prefix is None or k[1].startswith(prefix))]
        for key in doomed:
            del self.astdb[key]
        return _Outcome([b"200 result=0\n" if doomed else b"200 result=1\n"])  # sic: inverted in res_agi.c

    async def _cmd_speech_create(self, argv: list[bytes], name: str) -> _Outcome:
        self._warn("SPEECH CREATE: no speech engine is loaded on the lab Asterisk")
        return _Outcome([b"200 result=0\n"])

    async def _cmd_speech_set(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_speech_destroy(self, argv: list[bytes], name: str) -> _Outcome:
        return _Outcome([b"200 result=0\n"])

    async def _cmd_speech_load_grammar(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 5:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_speech_unload_grammar(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    _cmd_speech_activate_grammar = _cmd_speech_unload_grammar
    _cmd_speech_deactivate_grammar = _cmd_speech_unload_grammar

    async def _cmd_speech_recognize(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4:
            raise _ShowUsage
        return _Outcome([b"200 result=0\n"])

    async def _cmd_gosub(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or len(argv) > 5:
            raise _ShowUsage
        self._warn("GOSUB: the subroutine is not simulated, it just returns")
        return _Outcome([b"100 result=0 Trying...\n", b"200 result=0 Gosub complete\n"])

    # ---- media: STREAM FILE, CONTROL STREAM FILE, GET OPTION

    async def _cmd_stream_file(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or len(argv) > 5:
            raise _ShowUsage
        escape = _text(argv[3])
        offset = 0
        if len(argv) > 4:
            scanned = _scan_int(argv[4])
            if scanned is None:
                raise _ShowUsage
            offset = scanned
        file_name = _text(argv[2])
        sound = self._open_sound(file_name, name)
        if sound is None:
            self._played(name, None, file_name, 0.0)
            return _Outcome([f"200 result=-1 endpos={offset}\n".encode()], failed=True)
        res, endpos = await self._play(name, sound, file_name, escape, offset)
        self.vars["PLAYBACKSTATUS"] = "FAILED" if res else "SUCCESS"  # sic: a key press counts as FAILED
        return _Outcome([f"200 result={res} endpos={endpos}\n".encode()], failed=res < 0)

    async def _play(self, command: str, sound: _Sound, file_name: str, escape: str, offset: int) -> tuple[int, int]:
        """Play one file that ``escape`` digits can stop: (result, endpos in samples)."""
        start = min(max(offset, 0), sound.samples)
        length = (sound.samples - start) / sound.rate

        def position(seconds: float) -> int:
            return min(sound.samples, start + round(seconds * sound.rate))

        if not escape:
            self._lose_typeahead(command)
        prompt = Prompt(command, (PromptFile(file_name, sound.text),), escape) if escape else None
        action = await self._caller_action(command, length, prompt)
        if action.kind == "hangup":
            at = action.at or 0.0
            self._played(command, sound, file_name, at, interrupted=True)
            return -1, position(at)
        digits = action.digits if action.kind == "digits" else ""
        at = min(action.at if action.at is not None else min(KEY_DELAY, length / 2), length)
        for index, digit in enumerate(digits):
            if digit in escape:
                self._played(command, sound, file_name, at, interrupted=at < length)
                if index:
                    self._log(KeysPressed(at=self.clock, command=command, keys=digits[:index], lost=True))
                self._log(KeysPressed(at=self.clock, command=command, keys=digit))
                self.caller.typeahead = digits[index + 1 :]
                return ord(digit), position(at)
        start_clock = self.clock
        self._played(command, sound, file_name, length)
        if digits:  # none of them in the escape set: discarded (file.c:1733-1758)
            self._log(KeysPressed(at=start_clock + at, command=command, keys=digits, lost=True))
        return 0, sound.samples

    async def _cmd_control_stream_file(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 5 or len(argv) > 10:
            raise _ShowUsage
        if len(argv) > 5 and _scan_int(argv[5]) is None:
            raise _ShowUsage
        if len(argv) > 9 and _scan_int(argv[9]) is None:
            raise _ShowUsage
        stop = _text(argv[4])
        fwd = _text(argv[6]) if len(argv) > 6 and argv[6] else "#"
        rev = _text(argv[7]) if len(argv) > 7 and argv[7] else "*"
        offset_ms = (_scan_int(argv[9]) or 0) if len(argv) > 9 else 0
        file_name = _text(argv[3])
        sound = self._open_sound(file_name, name)
        if sound is None:
            self._played(name, None, file_name, 0.0)
            self.vars.update(CPLAYBACKSTATUS="ERROR", CPLAYBACKOFFSET=str(offset_ms))
            return _Outcome([f"200 result=-1 endpos={offset_ms}\n".encode()], failed=True)
        # Fast-forward and rewind keys win over stop keys (README, second round).
        stops = "".join(d for d in stop if d not in fwd + rev)
        res, endpos = await self._play(name, sound, file_name, stops, offset_ms * sound.rate // 1000)
        ms = endpos * 1000 // sound.rate
        if res > 0:
            self.vars.update(CPLAYBACKSTATUS="USERSTOPPED", CPLAYBACKSTOPKEY=chr(res), CPLAYBACKOFFSET=str(ms))
        elif res < 0:
            self.vars.update(CPLAYBACKSTATUS="ERROR", CPLAYBACKOFFSET=str(ms))
        else:
            ms = -1  # played to the end
            self.vars.update(CPLAYBACKSTATUS="SUCCESS", CPLAYBACKOFFSET="-1")
        return _Outcome([f"200 result={res} endpos={ms}\n".encode()], failed=res < 0)

    async def _cmd_get_option(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or len(argv) > 5:
            raise _ShowUsage
        escape = _text(argv[3])
        timeout_ms = _atoi(argv[4]) if len(argv) == 5 else 5000  # the pbx's dtimeout
        file_name = _text(argv[2])
        sound = self._open_sound(file_name, name)
        if sound is None:
            self._played(name, None, file_name, 0.0)
            return _Outcome([b"200 result=-1 endpos=0\n"], failed=True)
        length = sound.seconds
        wait = timeout_ms / 1000 if timeout_ms >= 0 else CALLER_PATIENCE
        prompt = Prompt(name, (PromptFile(file_name, sound.text),), escape, 1, timeout_ms)
        action = await self._caller_action(name, length + wait, prompt)
        if action.kind == "hangup":
            at = action.at or 0.0
            self._played(name, sound, file_name, min(at, length), interrupted=at < length)
            self.clock += max(0.0, at - length)
            endpos = min(sound.samples, round(at * sound.rate))
            return _Outcome([f"200 result=-1 endpos={endpos}\n".encode()], failed=True)
        digits = action.digits if action.kind == "digits" else ""
        if not digits:
            self._played(name, sound, file_name, length)
            self.clock += wait
            return _Outcome([f"200 result=0 endpos={sound.samples}\n".encode()])
        at = action.at if action.at is not None else min(KEY_DELAY, length / 2)
        digit = digits[0]
        self.caller.typeahead = digits[1:]
        during = at < length
        if during and digit not in escape:
            # discarded during the prompt; the wait after it hears nothing more
            self._log(KeysPressed(at=self.clock + at, command=name, keys=digit, lost=True))
            self._played(name, sound, file_name, length)
            self.clock += wait
            return _Outcome([f"200 result=0 endpos={sound.samples}\n".encode()])
        self._log(KeysPressed(at=self.clock + min(at, length), command=name, keys=digit))
        self._played(name, sound, file_name, min(at, length), interrupted=during)
        endpos = min(sound.samples, round(at * sound.rate)) if during else sound.samples
        # after the prompt any key ends the wait, but one outside the set reads as 0
        return _Outcome([f"200 result={ord(digit) if digit in escape else 0} endpos={endpos}\n".encode()])

    # ---- GET DATA / WAIT FOR DIGIT

    async def _cmd_get_data(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 3:
            raise _ShowUsage
        timeout = _atoi(argv[3]) if len(argv) >= 4 else 0
        max_digits = _atoi(argv[4]) if len(argv) >= 5 else 1024
        file_name = _text(argv[2])
        sound: _Sound | None = None
        if file_name:
            sound = self._open_sound(file_name, name)
            if sound is None:  # ast_app_getdata_full returns ast_streamfile's -1
                self._played(name, None, file_name, 0.0)
                return _Outcome([b"200 result=-1\n"])
        if max_digits == 0:  # ast_readstring_full: "if (!len) return -1"
            return _Outcome([b"200 result=-1\n"])
        # app.c:247: 6000 ms for the first digit and 2000 ms between digits by default
        first_wait = timeout / 1000 if timeout > 0 else (CALLER_PATIENCE if timeout < 0 else 6.0)
        between = timeout / 1000 if timeout > 0 else (CALLER_PATIENCE if timeout < 0 else 2.0)
        length = sound.seconds if sound else 0.0
        files = (PromptFile(file_name, sound.text),) if sound else ()
        action = await self._caller_action(name, length + first_wait, Prompt(name, files, "", max_digits, timeout))
        if action.kind == "hangup":
            at = action.at or 0.0
            if sound:
                self._played(name, sound, file_name, min(at, length), interrupted=at < length)
            self.clock += max(0.0, at - length)
            return _Outcome([b"200 result=-1\n"])
        digits = action.digits if action.kind == "digits" else ""
        at = action.at if action.at is not None else min(KEY_DELAY, length / 2)
        if sound:
            heard = min(at, length) if digits else length
            self._played(name, sound, file_name, heard, interrupted=bool(digits) and at < length)
        if digits and at > length:
            self.clock += at - length
        # ast_readstring_full with enders "#"
        collected, used, status = "", 0, "timeout"
        for used, digit in enumerate(digits, start=1):  # noqa: B007 - used after the loop
            if digit == "#" and not collected:
                status = "empty"
                break
            if digit != "#":
                collected += digit
            if digit == "#" or len(collected) >= max_digits:
                status = "complete"
                break
        if digits:
            self._log(KeysPressed(at=self.clock, command=name, keys=digits[:used]))
            self.clock += DIGIT_GAP * used
        self.caller.typeahead = digits[used:]
        if status == "timeout":
            if timeout < 0:
                # nothing ends the wait but the caller: they give up
                self._warn("GET DATA with a negative timeout and a caller who stopped: the caller hangs up")
                self._hangs_up_during(name)
                self.clock += CALLER_PATIENCE
                return _Outcome([b"200 result=-1\n"])
            self.clock += between if collected else first_wait
            self._log(DigitsReturned(at=self.clock, command=name, digits=collected, timed_out=True))
            return _Outcome([_wire(f"200 result={collected} (timeout)\n")])
        self._log(DigitsReturned(at=self.clock, command=name, digits=collected))
        return _Outcome([_wire(f"200 result={collected}\n")])

    async def _cmd_wait_for_digit(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        timeout = _scan_int(argv[3])
        if timeout is None:
            raise _ShowUsage
        wait = timeout / 1000 if timeout >= 0 else math.inf
        action = await self._caller_action(name, wait, Prompt(name, (), "", 1, timeout))
        digits = action.digits if action.kind == "digits" else ""
        if action.kind == "hangup" or (not digits and timeout < 0):
            if action.kind != "hangup":
                self._warn("WAIT FOR DIGIT -1 and a silent caller: the caller hangs up")
                self._hangs_up_during(name)
            self.clock += action.at if action.kind == "hangup" and action.at else CALLER_PATIENCE
            return _Outcome([b"200 result=-1\n"], failed=True)
        if not digits:
            self.clock += wait
            return _Outcome([b"200 result=0\n"])
        digit = digits[0]
        self.caller.typeahead = digits[1:]
        self.clock += min(action.at or 0.0, wait)
        self._log(KeysPressed(at=self.clock, command=name, keys=digit))
        return _Outcome([f"200 result={ord(digit)}\n".encode()])

    # ---- SAY *

    async def _say(self, name: str, escape: str, value: str, seconds: float) -> _Outcome:
        self._log(Said(at=self.clock, command=name, value=value))
        action = await self._caller_action(name, seconds)
        if action.kind == "hangup":
            self.clock += action.at or 0.0
            return _Outcome([b"200 result=-1\n"], failed=True)
        if escape and self.caller.typeahead and self.caller.typeahead[0] in escape:
            digit = self.caller.typeahead[0]
            self.caller.typeahead = self.caller.typeahead[1:]
            self._log(KeysPressed(at=self.clock, command=name, keys=digit))
            return _Outcome([f"200 result={ord(digit)}\n".encode()])
        self._lose_typeahead(name)
        self.clock += seconds
        return _Outcome([b"200 result=0\n"])

    async def _cmd_say_number(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or len(argv) > 5 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 0.8 * len(argv[2]))

    async def _cmd_say_digits(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 0.8 * len(argv[2]))

    async def _cmd_say_alpha(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or len(argv) > 5:
            raise _ShowUsage
        if len(argv) > 4 and argv[4][:1] not in (b"", b"a", b"A", b"l", b"L", b"n", b"N", b"u", b"U"):
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 0.7 * len(argv[2]))

    async def _cmd_say_phonetic(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4:
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 0.9 * len(argv[2]))

    async def _cmd_say_date(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) != 4 or _scan_int(argv[2]) is None:
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 6.0)

    _cmd_say_time = _cmd_say_date

    async def _cmd_say_datetime(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 4 or not _SCANF_FLOAT.match(argv[2]):  # ast_get_time_t
            raise _ShowUsage
        return await self._say(name, _text(argv[3]), _text(argv[2]), 9.5)

    # ---- RECORD FILE

    async def _cmd_record_file(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 6:
            raise _ShowUsage
        limit_ms = _scan_int(argv[5])
        if limit_ms is None:
            raise _ShowUsage
        silence_s = 0
        for index in (6, 7, 8):
            if len(argv) > index and b"s" in argv[index]:
                tail = argv[index][argv[index].index(b"s") :]
                if len(tail) > 2 and tail.startswith(b"s="):
                    silence_s = max(0, _atoi(tail[2:]))
                break
        offset = _scan_int(argv[6]) if len(argv) > 6 else None
        beep = (len(argv) > 6 and offset is None and not argv[6].startswith(b"s=")) or (
            len(argv) > 7 and not argv[7].startswith(b"s=")
        )
        escape = _text(argv[4])
        path, fmt = _text(argv[2]), _text(argv[3])
        if beep:
            sound = self._open_sound("beep", name + " (beep)")
            if sound is None:
                return _Outcome([b"200 result=-1 (randomerror) endpos=0\n"], failed=True)
            self._played(name, sound, "beep", sound.seconds)
        target = self._record_target(path, fmt, name)
        if target is None:
            return _Outcome([b"200 result=-1 (writefile)\n"], failed=True)
        limit = limit_ms / 1000 if limit_ms >= 0 else math.inf

        # What the caller does: talk `talk` seconds, then end with `then`.
        record_group = self.caller.pop_record()
        if record_group is not None:
            talk, then = record_group.seconds, record_group.then
        else:
            if not escape:
                self._lose_typeahead(name)
            prompt = Prompt(name, (), escape, None, limit_ms) if escape else None
            action = await self._caller_action(name, limit, prompt)
            if action.kind == "hangup":
                talk, then = action.at or 0.0, "h"
            elif action.kind == "record":
                talk, then = action.seconds, action.then
            elif action.digits:
                talk, then = (action.at if action.at is not None else KEY_DELAY), action.digits
            else:
                talk, then = 0.0, "s"

        ended_by, samples, reply, failed = "timeout", 0, b"", False
        if then not in ("h", "s"):
            digit = next((d for d in then if d in escape), None)
            if digit is not None and talk < limit:
                ended_by = "dtmf"
                samples = int(max(0.0, talk * 1000 - RECORD_DTMF_REWIND_MS) * 8)
                self.caller.typeahead = then[then.index(digit) + 1 :]
                self._log(KeysPressed(at=self.clock + talk, command=name, keys=digit))
                reply = f"200 result={ord(digit)} (dtmf) endpos={samples}\n".encode()
                self.clock += talk
            else:
                if then and digit is None:
                    self._log(KeysPressed(at=self.clock + talk, command=name, keys=then, lost=True))
                then = "s"  # the keys did not stop it: the caller goes quiet
        if then == "h":
            if talk < limit:
                ended_by = "hangup"
                samples = int(talk * 8000)
                self._hangs_up_during(name)
                reply = f"200 result=-1 (hangup) endpos={samples}\n".encode()
                failed = True
                self.clock += talk
            else:
                self._needhup = ("caller", name)  # the limit came first; the caller hangs up after
        if not reply and then in ("h", "s"):
            if silence_s and talk + silence_s < limit:
                ended_by = "silence"
                elapsed_ms = int((talk + silence_s) * 1000)
                # The file is rewound by (silence - 1000) ms; result is what ast_waitfor() left.
                samples = int((talk + 1.0) * 8000)
                left = limit_ms - elapsed_ms if limit_ms >= 0 else 100000 - elapsed_ms % 100000
                reply = f"200 result={left} (timeout) endpos={samples}\n".encode()
                self.clock += talk + silence_s
            elif math.isfinite(limit):
                samples = max(0, limit_ms - RECORD_LIMIT_SHORTFALL_MS) * 8
                reply = f"200 result=0 (timeout) endpos={samples}\n".encode()
                self.clock += limit
            else:
                ended_by = "hangup"
                self._warn("RECORD FILE without limit, silence detection or keys: the caller hangs up")
                samples = int((talk + CALLER_PATIENCE) * 8000)
                self._hangs_up_during(name)
                reply = f"200 result=-1 (hangup) endpos={samples}\n".encode()
                failed = True
                self.clock += talk + CALLER_PATIENCE
        silent_tail = min(samples, 8000) if ended_by == "silence" else 0
        self._write_recording(target, fmt, samples, silent_tail, name, path)
        self._log(Recorded(at=self.clock, path=str(target), seconds=samples / 8000, ended_by=ended_by))
        return _Outcome([reply], failed=failed)

    def _record_target(self, path: str, fmt: str, command: str) -> Path | None:
        def problem(reason: str) -> None:
            self.record.audio_problems.append(AudioProblem(command, path, reason))

        if fmt == "wav49":
            fmt = "WAV"
        if path.startswith("/"):
            target = Path(f"{path}.{fmt}")
        elif self.sounds_dir is not None:
            target = self.sounds_dir / f"{path}.{fmt}"
        else:
            problem("relative recording path: Asterisk writes it under <astdatadir>/sounds")
            return None
        if not target.parent.is_dir():
            problem(f"directory {target.parent} does not exist: ast_writefile does not create it")
            return None
        return target

    def _write_recording(self, target: Path, fmt: str, samples: int, silent_tail: int, command: str, path: str) -> None:
        rate = 16000 if fmt in ("wav16", "sln16") else 8000
        count = samples * rate // 8000
        pcm = _voice_pcm(count, rate, silent_tail * rate // 8000)
        if fmt in ("wav", "wav16"):
            data = wav_bytes(pcm, rate)
        elif fmt in ("sln", "slin", "raw", "sln16"):
            data = pcm
        else:
            self.record.audio_problems.append(
                AudioProblem(command, path, f"format {fmt!r} is not simulated: no file written (record wav)")
            )
            return
        target.write_bytes(data)

    # ---- EXEC

    async def _cmd_exec(self, argv: list[bytes], name: str) -> _Outcome:
        if len(argv) < 2:
            raise _ShowUsage
        app = _text(argv[1])
        data = _text(argv[2]) if len(argv) >= 3 else ""
        if len(argv) > 3:
            self._warn(f"EXEC {app}: words after the first argument are ignored by Asterisk: {argv[3:]!r}")
        if self.vars.get("AGIEXECFULL", "").lower() in ("yes", "true", "y", "t", "1", "on"):
            data = self._expand(data)
        handler = {
            "playback": self._app_playback,
            "dial": self._app_dial,
            "set": self._app_set,
            "noop": self._app_noop,
            "verbose": self._app_noop,
            "log": self._app_noop,
            "answer": self._app_noop,
            "wait": self._app_wait,
            "hangup": self._app_hangup,
        }.get(app.lower())
        if handler is None:
            if app.lower() in _UNSIMULATED_APPS:
                self._warn(f"EXEC {app}: application not simulated, answered 0")
                return _Outcome([b"200 result=0\n"])
            return _Outcome([b"200 result=-2\n"])  # "Could not find application"
        res = await handler(data)
        # handle_exec returns the app's result as its own status (res_agi.c:3356)
        return _Outcome([f"200 result={res}\n".encode()], failed=res == 2)

    async def _app_noop(self, data: str) -> int:
        return 0

    async def _app_set(self, data: str) -> int:
        name, sep, value = data.partition("=")
        if sep and name:
            self._set_variable(name.strip(), value)
        return 0

    async def _app_wait(self, data: str) -> int:
        try:
            seconds = max(0.0, float(data or 0))
        except ValueError:
            seconds = 0.0
        self._lose_typeahead("EXEC Wait")
        action = await self._caller_action("EXEC Wait", seconds)
        if action.kind == "hangup":
            self.clock += action.at or 0.0
            return -1
        self.clock += seconds
        return 0

    async def _app_hangup(self, data: str) -> int:
        self._needhup = ("ivr", None)
        return -1

    async def _app_playback(self, data: str) -> int:
        files, _, _options = data.partition(",")
        self._lose_typeahead("EXEC Playback")
        sounds = []
        for file_name in files.split("&"):
            sound = self._open_sound(file_name, "EXEC Playback")
            if sound is None:
                self._played("EXEC Playback", None, file_name, 0.0)
                self.vars["PLAYBACKSTATUS"] = "FAILED"
                return 0
            sounds.append((file_name, sound))
        if self.dead:
            self.vars["PLAYBACKSTATUS"] = "SUCCESS"
            return 0
        total = sum(s.seconds for _, s in sounds)
        action = await self._caller_action("EXEC Playback", total)
        hangup_at = action.at if action.kind == "hangup" else None
        elapsed = 0.0
        for file_name, sound in sounds:
            if hangup_at is not None and elapsed + sound.seconds > hangup_at:
                self._played("EXEC Playback", sound, file_name, hangup_at - elapsed, interrupted=True)
                self.vars["PLAYBACKSTATUS"] = "SUCCESS"  # sic: README, second round
                return -1
            self._played("EXEC Playback", sound, file_name, sound.seconds)
            elapsed += sound.seconds
        self.vars["PLAYBACKSTATUS"] = "SUCCESS"
        return 0

    async def _app_dial(self, data: str) -> int:
        parts = data.split(",")
        targets = tuple(t for t in parts[0].split("&") if t)
        timeout = parts[1] if len(parts) > 1 else ""
        options = ",".join(parts[2:]) if len(parts) > 2 else ""
        if not targets:
            self._warn("EXEC Dial without a target")
            return -1
        if self.dead:
            attempt = DialAttempt(data, targets, timeout, options, "CANCEL")
            self.record.dial_attempts.append(attempt)
            self._log(Dialled(at=self.clock, attempt=attempt))
            self._set_quietly(DIALSTATUS="CANCEL")
            return -1
        self._lose_typeahead("EXEC Dial")
        outcomes = [self._dial_outcome(target) for target in targets]
        answered = next(((t, o) for t, o in zip(targets, outcomes, strict=True) if o[0] == "ANSWER"), None)
        ring = _atoi(timeout.encode()) if timeout else 60
        if answered is not None:
            talk = answered[1][1]
            natural_end = float(talk)
            status = "ANSWER"
        else:
            statuses = {o[0] for o in outcomes}
            # Several targets that all failed: BUSY beats CONGESTION beats CHANUNAVAIL (README).
            ranking = ("NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL")
            status = next((s for s in ranking if s in statuses), "CHANUNAVAIL")
            natural_end = float(ring) if status == "NOANSWER" else 0.0
            talk = 0
        action = await self._caller_action("EXEC Dial", natural_end)
        hangup_at = action.at if action.kind == "hangup" else None
        if hangup_at is not None and answered is None:
            status = "CANCEL"
        attempt = DialAttempt(data, targets, timeout, options, status, talk if status == "ANSWER" else 0)
        self.record.dial_attempts.append(attempt)
        self._log(Dialled(at=self.clock, attempt=attempt))
        if status == "ANSWER":
            assert answered is not None
            spent = int(hangup_at) if hangup_at is not None else talk
            # Local/100@officer-00000016;1: the next Local channel after ours
            suffix = f"-{next(self._local_counter):08x}"
            peer = answered[0] + suffix + (";1" if answered[0].startswith("Local/") else "")
            self._set_quietly(
                DIALSTATUS="ANSWER",
                DIALEDTIME=str(spent),
                ANSWEREDTIME=str(spent),
                DIALEDTIME_MS=str(spent * 1000),
                ANSWEREDTIME_MS=str(spent * 1000),
                DIALEDPEERNAME=peer,
                DIALEDPEERNUMBER=answered[0].split("/", 1)[-1],
            )
            self.hangupcause = "16"
        else:
            self.hangupcause = "0"
            self._set_quietly(
                DIALSTATUS=status,
                DIALEDTIME="",
                ANSWEREDTIME="",
                DIALEDTIME_MS="",
                ANSWEREDTIME_MS="",
                DIALEDPEERNAME="",
            )
        self.clock += hangup_at if hangup_at is not None else natural_end
        if hangup_at is not None:
            return -1
        if status == "ANSWER":
            # The callee hung up: without 'g' Dial returns -1 (agi-dial-answer.txt).
            return 0 if "g" in options.split("(")[0] else -1
        return 0

    def _dial_outcome(self, target: str) -> tuple[str, int]:
        spec = self.dial_outcomes.get(target)
        if spec is None:
            spec = self.dial_outcomes.get(target.split("/", 1)[-1])
        if spec is None:
            spec = self.dial_outcomes.get("*", DEFAULT_DIAL_OUTCOME)
        return parse_dial_outcome(target, spec)

    # ----------------------------------------------------------- TCP

    async def run(self, host: str, port: int, *, pace: float = 0.0, timeout: float = 30.0) -> CallRecord:
        """Connect to the FastAGI server and play the whole call."""
        peer = await FastAGIPeer.connect(host, port)
        try:
            async with asyncio.timeout(timeout):
                await peer.send(self.environment())
                await peer.send(self.idle())
                while not self.finished:
                    stalls = peer.pipelined
                    line = await peer.read_command()
                    if peer.pipelined > stalls:
                        self._warn(
                            "the server sent a command before the reply to the one ahead of it: Asterisk "
                            "leaves it in its read buffer until more bytes arrive (PROTOCOL.md A6)"
                        )
                    if line is None:
                        break
                    if pace > 0:
                        await asyncio.sleep(pace)
                    if not await peer.send(await self.execute(line)):
                        break
                    if self.finished or not await peer.send(self.idle()):
                        break
                await peer.send(self.end_of_session())
        except TimeoutError as exc:
            self._warn(f"the call did not end within {timeout} s")
            raise CallTimeout(f"call {self.uniqueid} did not end within {timeout} s", self.record) from exc
        finally:
            await peer.close()
        return self.record


class FastAGIPeer:
    """The TCP side of Asterisk: reads commands the way ``run_agi`` does and
    writes raw bytes. Tests use it directly to send what no Asterisk would:
    junk, a 1 MiB header, a line without newline then EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._buffer = b""
        self._eof = False
        self._stall_next = False
        #: Commands that arrived before the reply to the one ahead of them.
        self.pipelined = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> FastAGIPeer:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> bool:
        """Write and drain; False when the server is gone (it closed fully)."""
        if not data:
            return True
        try:
            for line in data.splitlines(keepends=True):
                self.writer.write(line)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def read_command(self) -> bytes | None:
        """One command as fgets into ``char buf[8192]`` gives it: up to and
        including ``\\n``, or 8191 bytes of a longer line, or the unterminated
        rest at EOF (which Asterisk still executes). None at EOF."""
        limit = AGI_BUF_LEN - 1
        if self._stall_next:
            # The server wrote this command together with the previous one: it sits
            # in run_agi's stdio buffer, and poll() wakes only for new bytes or EOF
            # (PROTOCOL.md A6: "two commands in one write ... the call stalls").
            self._stall_next = False
            self.pipelined += 1
            await self._fill()
        while True:
            newline = self._buffer.find(b"\n", 0, limit)
            if newline != -1:
                line, self._buffer = self._buffer[: newline + 1], self._buffer[newline + 1 :]
                self._stall_next = b"\n" in self._buffer
                return line
            if len(self._buffer) >= limit:
                line, self._buffer = self._buffer[:limit], self._buffer[limit:]
                return line
            if self._eof:
                line, self._buffer = self._buffer, b""
                return line or None
            await self._fill()

    async def _fill(self) -> None:
        if self._eof:
            return
        try:
            chunk = await self.reader.read(65536)
        except (ConnectionError, OSError):
            chunk = b""
        if not chunk:
            self._eof = True
        self._buffer += chunk

    async def read_line(self, timeout: float = 5.0) -> bytes:
        """The server's next line as is (b'' at EOF)."""
        async with asyncio.timeout(timeout):
            line = await self.read_command()
        return line or b""

    async def read_until_eof(self, timeout: float = 5.0) -> bytes:
        chunks = [self._buffer]
        self._buffer = b""
        async with asyncio.timeout(timeout):
            while not self._eof:
                try:
                    chunk = await self.reader.read(65536)
                except (ConnectionError, OSError):
                    chunk = b""
                if not chunk:
                    self._eof = True
                chunks.append(chunk)
        return b"".join(chunks)

    def half_close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            if self.writer.can_write_eof():
                self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def place_call(
    host: str,
    port: int,
    *,
    script: str = "main",
    options: dict[str, str] | None = None,
    args: list[str] | None = None,
    caller_id: str | None = None,
    caller_name: str | None = None,
    presentation: int | None = None,
    keys: list[str] | None = None,
    dial_outcomes: dict[str, str] | None = None,
    exit_on_hangup: bool = False,
    sighup: bool = True,
    pace: float = 0.0,
    timeout: float = 30.0,
    key_source: Callable[[Prompt], Awaitable[str]] | None = None,
    channel_vars: dict[str, str] | None = None,
    sounds_dir: str | Path | None = None,
    stock_sounds: bool = True,
) -> CallRecord:
    """Place one simulated call into the FastAGI server at ``host:port``.

    ``keys`` scripts the caller (module docstring); ``dial_outcomes`` maps a Dial
    target (``"Local/100@officer"``, ``"100@officer"`` or ``"*"``) to ANSWER[:talk
    seconds] / NOANSWER / BUSY / CONGESTION / CHANUNAVAIL; ``exit_on_hangup`` and
    ``sighup`` are AGIEXITONHANGUP and AGISIGHUP. Raises :class:`CallTimeout`
    (with the partial record) when the call lasts longer than ``timeout``.
    """
    variables = dict(channel_vars or {})
    if exit_on_hangup:
        variables.setdefault("AGIEXITONHANGUP", "yes")
    if not sighup:
        variables.setdefault("AGISIGHUP", "no")
    setup = CallSetup(
        script=script,
        options=dict(options or {}),
        args=tuple(args or ()),
        request_host=f"{host}:{port}",
        caller_id=caller_id,
        caller_name=caller_name,
        presentation=presentation,
        channel_vars=variables,
        exit_on_hangup=exit_on_hangup,
        sighup=sighup,
    )
    simulator = SimulatedAsterisk(
        setup,
        keys=keys,
        key_source=key_source,
        dial_outcomes=dial_outcomes,
        sounds_dir=sounds_dir,
        stock_sounds=stock_sounds,
    )
    return await simulator.run(host, port, pace=pace, timeout=timeout)
