"""A virtual Layer-2 MIP transceiver serving a pseudo-terminal (``os.openpty``).

The host side opens :attr:`VirtualTransceiver.port` with pyserial exactly like a USB
interface, so the real serial code path (:class:`~dlms14908.transport.serial_link.SerialLink`)
runs in tests without hardware.  The transceiver side runs :class:`~dlms14908.transport.smip.VirtualMip`
and connects its channel side to any :class:`~dlms14908.transport.link.FrameLink` (e.g. a
simulated power-line channel), or keeps the frames for inspection.
"""

from __future__ import annotations

import asyncio
import os
import tty
from typing import Self

from ..errors import LocalProtocolError
from .link import FrameLink, LinkClosed, LinkError
from .smip import LlpConfig, MipKind, VirtualMip

__all__ = ["VirtualTransceiver"]


class VirtualTransceiver:
    """A pty whose far end behaves like a U50 (Serial-MIP LLP) or U61 L2 interface."""

    def __init__(
        self,
        kind: MipKind = "u50",
        *,
        unique_id: bytes = bytes.fromhex("04a1b2c3d4e5"),
        channel: FrameLink | None = None,
        config: LlpConfig | None = None,
        phase: int = 0,
    ) -> None:
        self.mip = VirtualMip(kind, unique_id=unique_id, config=config)
        self.channel = channel
        self.phase = phase
        self.sent: asyncio.Queue[bytes] = asyncio.Queue()
        "frames the host transmitted (when no channel link is attached)"
        self.raw_in = bytearray()
        "every byte the host wrote (for byte-level assertions)"
        self._master: int | None = None
        self._slave: int | None = None
        self.port = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._chan_task: asyncio.Task[None] | None = None
        self._wbuf = bytearray()
        self._writer_on = False
        self._sends: set[asyncio.Task[None]] = set()
        self.channel_send_failures = 0
        "frames the channel link refused (it was closed or had failed)"

    async def start(self) -> str:
        """Create the pty and start serving; return the path for the host to open."""
        if self._master is not None:
            raise LocalProtocolError("already started")
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo / line discipline before pyserial configures it
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._loop.add_reader(master, self._on_readable)
        if self.channel is not None:
            self._chan_task = asyncio.create_task(self._channel_reader())
        return self.port

    def power_up(self) -> None:
        """Simulate a reset of the interface: it announces niRESET uplink and forgets its modes."""
        self.mip.power_up()
        self._pump()

    def inject_raw(self, data: bytes) -> None:
        """Write arbitrary bytes to the host (noise, broken packets)."""
        self._write(data)

    def inject_frame(self, lpdu: bytes) -> None:
        """Hand the host an LPDU (with CRC) as if it had been heard on the channel."""
        assert self._loop is not None
        self.mip.frame_from_channel(bytes(lpdu), self._loop.time(), phase=self.phase)
        self._pump()

    async def close(self) -> None:
        if self._chan_task is not None:
            self._chan_task.cancel()
            try:
                await self._chan_task
            except (asyncio.CancelledError, LinkClosed, LinkError):
                pass
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
        if self._master is not None and self._loop is not None:
            self._loop.remove_reader(self._master)
            if self._writer_on:
                self._loop.remove_writer(self._master)
                self._writer_on = False
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals ----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._master is None or not data:
            return
        self._wbuf += data
        self._flush_writes()

    def _flush_writes(self) -> None:
        assert self._loop is not None
        while self._wbuf and self._master is not None:
            try:
                n = os.write(self._master, self._wbuf)
            except BlockingIOError:
                if not self._writer_on:
                    self._loop.add_writer(self._master, self._flush_writes)
                    self._writer_on = True
                return
            except OSError:
                self._wbuf.clear()
                break
            del self._wbuf[:n]
        if self._writer_on and self._master is not None:
            self._loop.remove_writer(self._master)
            self._writer_on = False

    def _on_readable(self) -> None:
        assert self._master is not None and self._loop is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: the host side is closed
            return
        if not data:
            return
        self.raw_in += data
        self.mip.receive_bytes(data, self._loop.time())
        self._pump()

    def _on_timer(self) -> None:
        assert self._loop is not None
        now = max(self._timer_at or 0.0, self._loop.time())
        self._timer = self._timer_at = None
        self.mip.handle_timer(now)
        self._pump()

    def _pump(self) -> None:
        assert self._loop is not None
        for frame in self.mip.frames_to_channel():
            if self.channel is not None:
                t = self._loop.create_task(self.channel.send(frame))
                self._sends.add(t)  # the loop keeps only weak references to tasks
                t.add_done_callback(self._send_done)
            else:
                self.sent.put_nowait(frame)
        self._write(self.mip.bytes_to_send(self._loop.time()))
        deadline = self.mip.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer) if deadline is not None else None
            self._timer_at = deadline

    def _send_done(self, t: asyncio.Task[None]) -> None:
        self._sends.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if isinstance(exc, (LinkClosed, LinkError)):
            self.channel_send_failures += 1
        elif exc is not None:
            t.get_loop().call_exception_handler(
                {"message": "VirtualTransceiver: channel send failed", "exception": exc, "task": t})

    async def _channel_reader(self) -> None:
        assert self.channel is not None
        while True:
            frame = await self.channel.recv()
            self.inject_frame(frame)
