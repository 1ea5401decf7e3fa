"""Layer-2 MIP over a pyserial port (``serial_for_url``): the asyncio adapter of
:class:`~dlms14908.transport.smip.MipDriver` (reference ``lontalk.md`` §2.2-§2.3, §2.7).

A reader thread blocks in ``Serial.read`` (so every pyserial URL works: device paths,
``socket://``, ``rfc2217://``, ``loop://``) and hands the bytes to the event loop; the loop
feeds the sans-I/O driver, writes what it returns and re-arms one timer (style.md §b11).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import serial

from .link import BaseLink, LinkError
from .smip import (
    DriverConfig,
    DriverEvent,
    DriverFailed,
    DriverReady,
    FrameReceived,
    FrameSendFailed,
    L2ReceiveError,
    MipDriver,
    MipKind,
)

__all__ = ["DEFAULT_BAUD", "SerialLink", "default_kind"]

#: U50 LLP at 115200 (LTS-DG p.34); U61 at 460800 (``lonifd.c`` ``BRATE_U61a``).
DEFAULT_BAUD = {"u50": 115200, "u61": 460800}


def default_kind(port: str) -> MipKind:
    """ttyUSB (FTDI) -> U61, anything else (ttyACM, sockets, ptys) -> U50 (``lonifd`` rule)."""
    return "u61" if "ttyUSB" in port else "u50"


class SerialLink(BaseLink):
    """An L2 MIP reached through pyserial; frames in and out carry their CRC."""

    def __init__(self, ser: Any, driver: MipDriver, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.port = ser
        self.driver = driver
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ready: asyncio.Future[bytes] = loop.create_future()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reader, name=f"serial-reader {ser.port}", daemon=True)
        self.l2_errors = 0
        self.send_failures = 0

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        kind: MipKind | None = None,
        baudrate: int | None = None,
        config: DriverConfig | None = None,
        startup_timeout: float = 5.0,
        **serial_kwargs: Any,
    ) -> SerialLink:
        """Open ``url`` with pyserial, run the start-up sequence, return a ready link."""
        loop = asyncio.get_running_loop()
        if config is None:
            config = DriverConfig(kind=kind or default_kind(url))
        elif kind is not None and kind != config.kind:
            config = DriverConfig(kind=kind, phase_mode=config.phase_mode, reset_wait=config.reset_wait,
                                  step_timeout=config.step_timeout, step_retries=config.step_retries,
                                  llp=config.llp)
        baud = baudrate or DEFAULT_BAUD[config.kind]
        try:
            ser = serial.serial_for_url(url, baudrate=baud, timeout=0.02, **serial_kwargs)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LinkError(f"cannot open {url!r}: {exc}") from None
        link = cls(ser, MipDriver(config), loop)
        link._thread.start()
        link.driver.start(loop.time())
        link._pump([])
        try:
            await asyncio.wait_for(asyncio.shield(link._ready), startup_timeout)
        except (TimeoutError, LinkError) as exc:
            await link.close()
            if isinstance(exc, LinkError):
                raise
            raise LinkError(f"{url!r}: interface did not finish start-up ({link.driver.state.name})") from None
        return link

    @property
    def unique_id(self) -> bytes | None:
        return self.driver.unique_id

    async def send(self, frame: bytes) -> None:
        """Queue one LPDU (with CRC) for the interface."""
        self._check_open()
        self.driver.send_frame(bytes(frame), self._loop.time())
        self._count_sent(frame)
        self._pump([])

    async def close(self) -> None:
        if self.closed:
            return
        self._mark_closed()
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        # socket:// and rfc2217:// have no cancel_read (the read timeout ends the thread then)
        with contextlib.suppress(AttributeError, OSError):  # SerialException is an OSError
            self.port.cancel_read()
        await asyncio.to_thread(self._thread.join, 1.0)
        with contextlib.suppress(OSError):
            self.port.close()

    # -- internals ----------------------------------------------------------------------
    def _reader(self) -> None:
        ser = self.port
        while not self._stop.is_set():
            try:
                data = ser.read(max(1, ser.in_waiting))
            except Exception as exc:  # noqa: BLE001 - port vanished: any failure must reach the loop
                if not self._stop.is_set():
                    self._loop.call_soon_threadsafe(self._on_error, exc)
                return
            if data:
                try:
                    self._loop.call_soon_threadsafe(self._on_bytes, data)
                except RuntimeError:  # loop closed
                    return

    def _on_error(self, exc: BaseException) -> None:
        err = LinkError(f"serial port failed: {exc}")
        if not self._ready.done():
            self._ready.set_exception(err)
        self._fail(err)

    def _on_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        self._pump(self.driver.receive_bytes(data, self._loop.time()))

    def _on_timer(self) -> None:
        now = max(self._timer_at or 0.0, self._loop.time())
        self._timer = self._timer_at = None
        if self.closed:
            return
        self._pump(self.driver.handle_timer(now))

    def _pump(self, events: list[DriverEvent]) -> None:
        for ev in events:
            if isinstance(ev, FrameReceived):
                self._deliver(ev.lpdu)
            elif isinstance(ev, DriverReady):
                if not self._ready.done():
                    self._ready.set_result(ev.unique_id)
            elif isinstance(ev, DriverFailed):
                err = LinkError(ev.reason)
                if not self._ready.done():
                    self._ready.set_exception(err)
                self._fail(err)
            elif isinstance(ev, L2ReceiveError):
                self.l2_errors += 1
                self.stats.frames_dropped += 1
            elif isinstance(ev, FrameSendFailed):
                self.send_failures += 1
        out = self.driver.bytes_to_send(self._loop.time())
        if out and not self.closed:
            try:
                self.port.write(out)
            except OSError as exc:  # SerialException, SerialTimeoutException, EIO
                self._on_error(exc)
                return
        deadline = self.driver.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            self._timer_at = deadline
