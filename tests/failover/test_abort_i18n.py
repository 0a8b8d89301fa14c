"""Why a run stopped is stored with it: a timeout or a signal reads in the reader's language."""

from __future__ import annotations

import os
import signal
import threading

from bcpctl.i18n import shown
from failover.abort import AbortSignal, watch


def test_a_timeout_and_a_signal_are_worded_in_japanese_and_unchanged_in_english() -> None:
    timed_out = AbortSignal()
    with watch(timed_out, timeout=0.01, handle_signals=False):
        assert timed_out.wait(5)
    assert timed_out.reason == "timeout after 0.01s"
    assert shown(timed_out.reason, "ja") == "0.01 秒で時間切れになりました"

    assert threading.current_thread() is threading.main_thread()
    signalled = AbortSignal()
    with watch(signalled):
        os.kill(os.getpid(), signal.SIGTERM)
        assert signalled.wait(5)
    assert signalled.reason == "received SIGTERM"
    assert shown(signalled.reason, "ja") == "SIGTERM を受信しました"
